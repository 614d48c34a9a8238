//! The schemas of the resource types inside a cluster ([`crate::contract`]), declared once here
//! and registered by both Kubernetes providers (`kube` against a real API server, `simkube` in
//! the sim), each with its own operations.

use tessera_provider_api::{Field, Schema, Ty};

use crate::alerting_status::ALERTING;
use crate::contract::{OBJECT, RELEASE};
use crate::coverage::NODES;

/// What a release's read adds: the objects it applied, and whether they are as applied.
pub const INVENTORY: &str = "inventory";
pub const OBJECTS: &str = "objects";
pub const IN_SYNC: &str = "inSync";

/// One Kubernetes object. Its manifest is compared as server-side apply owns it: only the fields
/// the manifest sets, so what the API server and controllers add is never a diff.
pub fn object() -> Schema {
    Schema::new(OBJECT, 1).input("manifest", Ty::Any).takes(5, 5, 10)
}

/// One Helm release: its chart pinned by version and digest, its values, and what a read reports
/// of the objects it applied.
pub fn release() -> Schema {
    let input = |name: &str, ty: Ty| Field::input(name, ty).maybe_read();
    Schema::new(RELEASE, 1)
        .field(input("name", Ty::Text))
        .field(input("namespace", Ty::Text))
        .field(input("chart", Ty::Text))
        .field(input("version", Ty::Text))
        .field(input("digest", Ty::Text).optional())
        .field(input("values", Ty::Any))
        .field(input("kubeVersion", Ty::Text))
        .field(Field::input(IN_SYNC, Ty::Bool))
        .field(Field::computed(INVENTORY, Ty::list(Ty::Text)))
        .field(Field::computed(OBJECTS, Ty::map(Ty::Any)))
        .takes(180, 180, 60)
}

/// The cluster's nodes, read only: `{"nodes": [Node…]}`.
pub fn nodes() -> Schema {
    Schema::new(NODES, 1).field(Field::computed("nodes", Ty::list(Ty::Any)))
}

/// Whether the cluster's alerting works, read only: an
/// [`AlertingStatus`](crate::alerting_status::AlertingStatus).
pub fn alerting() -> Schema {
    Schema::new(ALERTING, 1)
        .field(Field::computed("routingLoaded", Ty::Bool))
        .field(Field::computed("heartbeatFiring", Ty::Bool))
        .field(Field::computed("detail", Ty::Text).maybe_read())
        // Left out of a read when no critical alert fires.
        .field(Field::computed("criticalFiring", Ty::list(Ty::Text)).maybe_read())
}

/// Every type inside a cluster.
pub fn all() -> Vec<Schema> {
    vec![object(), release(), nodes(), alerting()]
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_schemas_are_sound() {
        for s in super::all() {
            assert!(s.problems().is_empty(), "{:?}", s.problems());
        }
    }
}
