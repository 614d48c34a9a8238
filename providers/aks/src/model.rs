//! The request and response bodies Tessera uses, from `managedClusters.json` (2024-09-01), and
//! the resource-group body of the Resources API. Only the fields Tessera reads or writes; others
//! in a response are ignored, and read-only fields are never sent back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub type Tags = BTreeMap<String, String>;

/// `ManagedClusterAgentPoolProfileProperties`: a pool's properties, in an `AgentPool` and (with
/// its name) in a cluster's `agentPoolProfiles`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolProperties {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vm_size: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_type: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub pool_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orchestrator_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_auto_scaling: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_taints: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_set_priority: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_set_eviction_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spot_max_price: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zones: Option<Vec<String>>,
    #[serde(rename = "vnetSubnetID", skip_serializing_if = "Option::is_none")]
    pub vnet_subnet_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
    // Read-only: reported, never sent.
    #[serde(skip_serializing)]
    pub provisioning_state: Option<String>,
    #[serde(skip_serializing)]
    pub e_tag: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolProfile {
    pub name: String,
    #[serde(flatten)]
    pub properties: PoolProperties,
}

/// `AgentPool`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentPool {
    #[serde(skip_serializing)]
    pub id: Option<String>,
    #[serde(skip_serializing)]
    pub name: Option<String>,
    pub properties: PoolProperties,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkProfile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_plugin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_plugin_mode: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterProperties {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_prefix: Option<String>,
    #[serde(rename = "enableRBAC", skip_serializing_if = "Option::is_none")]
    pub enable_rbac: Option<bool>,
    #[serde(rename = "aadProfile", skip_serializing_if = "Option::is_none")]
    pub aad_profile: Option<AadProfile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_local_accounts: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_pool_profiles: Option<Vec<PoolProfile>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_profile: Option<NetworkProfile>,
    #[serde(rename = "apiServerAccessProfile", skip_serializing_if = "Option::is_none")]
    pub api_server_access_profile: Option<ApiServerAccessProfile>,
    #[serde(skip_serializing)]
    pub provisioning_state: Option<String>,
    #[serde(skip_serializing)]
    pub fqdn: Option<String>,
    /// A private cluster's API address inside its network.
    #[serde(rename = "privateFQDN", skip_serializing)]
    pub private_fqdn: Option<String>,
}

/// `ManagedClusterAPIServerAccessProfile`: who reaches the API server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiServerAccessProfile {
    #[serde(rename = "authorizedIPRanges", default, skip_serializing_if = "Vec::is_empty")]
    pub authorized_ip_ranges: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_private_cluster: Option<bool>,
}

/// `ManagedClusterAADProfile`: Entra ID, managed by AKS, with Azure RBAC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AadProfile {
    pub managed: bool,
    #[serde(rename = "enableAzureRBAC")]
    pub enable_azure_rbac: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sku {
    pub name: String,
    pub tier: String,
}

/// `ManagedCluster`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedCluster {
    #[serde(skip_serializing)]
    pub id: Option<String>,
    pub location: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<Sku>,
    pub properties: ClusterProperties,
    #[serde(skip_serializing)]
    pub e_tag: Option<String>,
}

/// `TagsObject`, the body of `ManagedClusters_UpdateTags`.
#[derive(Debug, Clone, Serialize)]
pub struct TagsObject {
    pub tags: Tags,
}

/// A resource group (Resources API).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceGroup {
    #[serde(skip_serializing)]
    pub id: Option<String>,
    #[serde(skip_serializing)]
    pub name: Option<String>,
    pub location: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
    #[serde(skip_serializing)]
    pub properties: Option<GroupProperties>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupProperties {
    pub provisioning_state: Option<String>,
}

/// `CredentialResults` of `listClusterUserCredential`: base64 kubeconfigs.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CredentialResults {
    #[serde(default)]
    pub kubeconfigs: Vec<CredentialResult>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CredentialResult {
    pub name: Option<String>,
    pub value: Option<String>,
}

/// The status body behind `Azure-AsyncOperation`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OperationStatus {
    pub status: Option<String>,
    pub error: Option<ErrorBody>,
}

/// ARM's error: nested (`{"error": {...}}`) or flat (`{"code", "message"}`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorBody {
    pub code: Option<String>,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CloudError {
    pub error: Option<ErrorBody>,
    pub code: Option<String>,
    pub message: Option<String>,
}

impl CloudError {
    /// The code and message, whichever shape the body had.
    pub fn parts(self) -> (Option<String>, Option<String>) {
        match self.error {
            Some(e) => (e.code, e.message),
            None => (self.code, self.message),
        }
    }
}
