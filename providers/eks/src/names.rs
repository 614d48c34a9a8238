//! The EKS backend's resource type names, used by lowering and by the type table alike.

pub const VPC: &str = "eks.vpc";
pub const SUBNET: &str = "eks.subnet";
pub const ROLE: &str = "eks.role";
pub const CLUSTER: &str = "eks.cluster";
pub const NODEGROUP: &str = "eks.nodegroup";
