//! The GKE resource types' schemas: their attributes, who owns each, what forces a replacement,
//! their outputs and how long their operations take. Declared once here; the `types` module
//! registers them with their operations, and lowering writes only values.

use tessera_provider_api::{Field, FieldPolicy, Replacement, Schema, TAGS_ATTR, Ty};

pub const CLUSTER: &str = "gke.cluster";
pub const NODEPOOL: &str = "gke.nodepool";

fn texts() -> Ty {
    Ty::list(Ty::Text)
}

/// The ownership tags, as lowering writes them and `labels::to_tags` reads them back.
fn tags() -> Field {
    Field::input(TAGS_ATTR, Ty::map(Ty::Text))
}

/// A pool's values: the node pool resource's inputs, also the shape of the cluster's
/// `initialPool` (which lowering builds from the same function).
fn pool_fields() -> Vec<Field> {
    let taint = Ty::Object(vec![
        Field::input("key", Ty::Text),
        Field::input("value", Ty::Text),
        Field::input("effect", Ty::Text),
    ]);
    vec![
        Field::input("name", Ty::Text),
        Field::input("machineType", Ty::Text),
        Field::input("spot", Ty::Bool),
        Field::input("imageType", Ty::Text),
        Field::input("labels", Ty::map(Ty::Text)),
        Field::input("taints", Ty::list(taint)),
        // A pool without autoscaling has no bounds to report.
        Field::input("minNodes", Ty::Integer).maybe_read(),
        Field::input("maxNodes", Ty::Integer).maybe_read(),
        Field::input("initialNodeCount", Ty::Integer),
        Field::input("version", Ty::Text),
        tags(),
    ]
}

/// The cluster: its control plane, and its first pool in the create body.
pub fn cluster() -> Schema {
    let network = Ty::Object(vec![
        // A managed network (`cidr`), or an existing one (`network`, `subnetwork`).
        Field::input("cidr", Ty::Text).optional(),
        Field::input("network", Ty::Text).optional(),
        Field::input("subnetwork", Ty::Text).optional(),
    ]);
    Schema::new(CLUSTER, 1)
        .input("name", Ty::Text)
        .input("project", Ty::Text)
        .input("location", Ty::Text)
        .input("nodeLocations", texts())
        .input("version", Ty::Text)
        .input("releaseChannel", Ty::Text)
        .input("loggingComponents", texts())
        .input("monitoringComponents", texts())
        .input("network", network)
        .input("publicEndpoint", Ty::Bool)
        .input("authorizedNetworks", texts())
        .field(tags())
        // Only in the create body of a cluster with pools; never read back.
        .field(Field::input("initialPool", Ty::Object(pool_fields())).optional().write_only())
        // Empty until the control plane is up.
        .field(Field::computed("endpoint", Ty::Text).maybe_read())
        .field(Field::computed("certificateAuthority", Ty::Text).maybe_read())
        .field(Field::computed("currentMasterVersion", Ty::Text))
        .versioned("version")
        .outputs(&["name", "endpoint", "certificateAuthority"])
        // Only the create body uses it; the pool's own resource owns the pool from then on.
        .policy("initialPool", FieldPolicy::Ignored)
        .replace_on("name")
        .replace_on("project")
        .replace_on("location")
        .replace_on("nodeLocations")
        .replace_on("network")
        // No public address means private nodes, which existing pools cannot take: a change of
        // `publicEndpoint` replaces the cluster. Authorized networks change in place.
        .replace_on("publicEndpoint")
        // Cluster names are unique per location: the old cluster must go before the new one.
        .replaced_by(Replacement::DestroyBeforeCreate)
        .takes(480, 600, 300)
}

/// One node pool.
pub fn nodepool() -> Schema {
    let mut schema = Schema::new(NODEPOOL, 1).input("cluster", Ty::Text);
    for f in pool_fields() {
        schema = schema.field(f);
    }
    schema
        .field(Field::computed("autoscaling", Ty::Bool))
        .field(Field::computed("currentVersion", Ty::Text))
        // The autoscaler moves the live count; this is only where the pool starts.
        .policy("initialNodeCount", FieldPolicy::Delegated)
        .replace_on("cluster")
        .replace_on("name")
        .replace_on("machineType")
        .replace_on("spot")
        .replace_on("imageType")
        .takes(180, 300, 180)
}

/// Every GKE type.
pub fn all() -> Vec<Schema> {
    vec![cluster(), nodepool()]
}
