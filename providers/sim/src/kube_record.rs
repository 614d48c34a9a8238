//! How an object inside a sim cluster is recorded in the sim cloud's store: the attributes that
//! say which cluster it belongs to and which object it is.
//!
//! The cluster's Kubernetes API (`kube_api`) writes these, and the cloud's console
//! (`SimCloud::console_delete_kube_object`) finds objects by them; the layout lives here so that
//! the cloud need not reach into the Kubernetes API that is built on it.

use serde_json::Value;

use crate::store::SimResource;

pub const CLUSTER_ID_ATTR: &str = "clusterId";
pub const CLUSTER_NAME_ATTR: &str = "clusterName";
pub const OBJECT_ID_ATTR: &str = "objectId";

/// Whether `r` is the object `object_id` (as `tessera_kube::contract::object_id` spells it) of
/// the sim cluster named `cluster_name`.
pub fn is_object(r: &SimResource, cluster_name: &str, object_id: &str) -> bool {
    r.attrs.get(CLUSTER_NAME_ATTR).and_then(Value::as_str) == Some(cluster_name)
        && r.attrs.get(OBJECT_ID_ATTR).and_then(Value::as_str) == Some(object_id)
}
