//! `/version` and the discovery documents (`/api`, `/api/v1`, `/apis`, `/apis/<g>[/<v>]`).
//!
//! ## Overview
//! Built from the store's resource types, so a CRD's kinds appear once it is Established.
//! Only the legacy (non-aggregated) discovery format is served; clients asking for the
//! aggregated one get the legacy document with `Content-Type: application/json` and fall back.

use serde_json::{Value, json};

use crate::registry::{self, ResourceType};
use crate::status::Failure;
use crate::store::Store;

pub fn version(kubernetes_version: &str) -> Value {
    let mut parts = kubernetes_version.split('.');
    let major = parts.next().unwrap_or("1");
    let minor = parts.next().unwrap_or("0");
    json!({
        "major": major,
        "minor": minor,
        "gitVersion": format!("v{kubernetes_version}"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub fn core_versions(address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    })
}

pub fn groups(store: &Store) -> Value {
    let groups: Vec<Value> = registry::groups(&store.resource_types())
        .iter()
        .map(|(name, versions)| registry::api_group(name, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn group(store: &Store, name: &str) -> Result<Value, Failure> {
    registry::groups(&store.resource_types())
        .iter()
        .find(|(g, _)| g == name)
        .map(|(g, versions)| registry::api_group(g, versions))
        .ok_or_else(Failure::no_resource)
}

pub fn resources(store: &Store, group: &str, version: &str) -> Result<Value, Failure> {
    let types = store.resource_types();
    let selected: Vec<&ResourceType> = types.iter().filter(|t| t.group == group && t.version == version).collect();
    if selected.is_empty() {
        return Err(Failure::no_resource());
    }
    let group_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    Ok(registry::resource_list(&group_version, &selected))
}
