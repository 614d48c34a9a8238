//! The AKS backend's resource type names, used by lowering and by the type table alike.

pub const GROUP: &str = "aks.resourceGroup";
pub const CLUSTER: &str = "aks.cluster";
pub const POOL: &str = "aks.agentPool";
