//! The schemas of the shared shapes ([`crate::lower`]: a network, a control plane, node pools),
//! declared once for every prefix that lowers to them (`sim`, and a backend's plan-only stand-in),
//! and of `simkube.namespace`, the sim's own in-cluster type.

use tessera_provider_api::{Field, FieldPolicy, Replacement, Schema, Ty};

use crate::profile::{Profile, Shape};

/// The sim's own in-cluster type: a namespace kept as a plain cloud object.
pub const NAMESPACE: &str = "simkube.namespace";
/// The attribute that records which cluster a `simkube.namespace` lives in.
pub const CLUSTER_ATTR: &str = "clusterId";

/// The ownership tags every shape carries.
fn tags() -> Field {
    Field::input("tags", Ty::map(Ty::Text))
}

/// The schema of `shape` under `prefix`, with `profile`'s durations as its estimates.
pub fn shape(prefix: &str, shape: Shape, profile: &Profile) -> Schema {
    let secs = |op| profile.duration(shape, op).as_secs();
    use tessera_provider_api::Operation::{Create, Delete, Update};
    let schema =
        |name: &str| Schema::new(format!("{prefix}.{name}"), 1).takes(secs(Create), secs(Update), secs(Delete));
    match shape {
        Shape::Network => schema("network")
            .input("cidr", Ty::Text)
            .input("region", Ty::Text)
            .input("zones", Ty::list(Ty::Text))
            .field(tags())
            .outputs(&["cidr"])
            .replace_on("cidr")
            .replace_on("region"),
        Shape::Cluster => schema("cluster")
            .input("name", Ty::Text)
            .input("region", Ty::Text)
            .input("version", Ty::Text)
            .input("logTypes", Ty::list(Ty::Text))
            .input("network", Ty::Text)
            .field(tags())
            .field(Field::computed("endpoint", Ty::Text))
            .field(Field::computed("certificateAuthority", Ty::Text))
            .versioned("version")
            .outputs(&["name", "endpoint", "certificateAuthority"])
            .replace_on("network")
            .replace_on("name")
            .replace_on("region")
            // The name is unique per region: the old cluster must go before the new one can exist.
            .replaced_by(Replacement::DestroyBeforeCreate),
        Shape::NodePool => schema("nodepool")
            .input("cluster", Ty::Text)
            .input("instanceType", Ty::Text)
            .input("arch", Ty::Text)
            .input("capacityType", Ty::Text)
            .input("minSize", Ty::Integer)
            .input("maxSize", Ty::Integer)
            .input("desiredSize", Ty::Integer)
            .input("labels", Ty::map(Ty::Text))
            .input("taints", Ty::list(Ty::Any))
            .input("version", Ty::Text)
            .field(tags())
            // The cluster autoscaler owns the live node count.
            .policy("desiredSize", FieldPolicy::Delegated)
            .replace_on("cluster")
            .replace_on("instanceType")
            .replace_on("arch")
            .replace_on("capacityType"),
    }
}

/// The three shapes under `prefix`.
pub fn shapes(prefix: &str, profile: &Profile) -> Vec<Schema> {
    [Shape::Network, Shape::Cluster, Shape::NodePool].into_iter().map(|s| shape(prefix, s, profile)).collect()
}

/// A namespace the sim keeps as a plain cloud object, connected through its cluster's outputs:
/// the engine's tests use it to prove references into a cluster made in the same apply.
pub fn namespace() -> Schema {
    Schema::new(NAMESPACE, 1)
        .input("name", Ty::Text)
        .field(tags())
        .input("server", Ty::Text)
        .input("caData", Ty::Text)
        .field(Field::computed(CLUSTER_ATTR, Ty::Text))
        .replace_on("server")
        .replace_on("caData")
        .takes(2, 2, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schemas_are_sound() {
        for profile in Profile::NAMES.iter().filter_map(|n| Profile::named(n)) {
            for s in shapes("sim", &profile) {
                assert!(s.problems().is_empty(), "{:?}", s.problems());
            }
        }
        assert!(namespace().problems().is_empty(), "{:?}", namespace().problems());
    }
}
