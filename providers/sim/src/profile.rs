//! The clouds the sim imitates: their catalogs and how long their operations take.
//!
//! Durations are wall-clock figures from public measurements, so that scheduling decisions made
//! against the sim (which control plane to start first) are the ones that matter on real clouds:
//! - EKS control plane: about 10 min. AWS's CreateCluster reference only says "several minutes";
//!   an independent run across 21 regions measured 13–16 min
//!   (easontechtalk.com, "Unofficial EKS Cluster Creation Performance"). We use the design
//!   brief's 10 min as the typical case.
//! - GKE: about 4 min (kubedex.com, "Microsoft AKS vs Google GKE": 3 min 50 s average create).
//! - AKS: about 6 min (Microsoft's own 5–6 min claim, reported in kubedex.com,
//!   "Is Azure Kubernetes (AKS) any less terrible?").
//! - Managed node pools: 3–5 min on all three.
//! - kind: tens of seconds on a laptop.

use std::time::Duration;

use tessera_provider_api::{Catalog, Operation, catalogs};

/// The resource kinds every profile lowers to, in dependency order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Network,
    Cluster,
    NodePool,
}

impl Shape {
    pub fn from_rtype(rtype: &str) -> Option<Self> {
        match rtype.rsplit('.').next()? {
            "network" => Some(Self::Network),
            "cluster" => Some(Self::Cluster),
            "nodepool" => Some(Self::NodePool),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Profile {
    pub name: &'static str,
    pub catalog: Catalog,
    /// create, update, delete durations per shape.
    durations: [[Duration; 3]; 3],
}

const fn mins(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}
const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

impl Profile {
    pub const NAMES: [&'static str; 4] = ["eks", "aks", "gke", "kind"];

    pub fn named(name: &str) -> Option<Self> {
        match name {
            "eks" => Some(Self::eks()),
            "aks" => Some(Self::aks()),
            "gke" => Some(Self::gke()),
            "kind" => Some(Self::kind()),
            _ => None,
        }
    }

    pub fn duration(&self, shape: Shape, op: Operation) -> Duration {
        let s = match shape {
            Shape::Network => 0,
            Shape::Cluster => 1,
            Shape::NodePool => 2,
        };
        let o = match op {
            Operation::Create => 0,
            Operation::Update => 1,
            Operation::Delete => 2,
        };
        self.durations[s][o]
    }

    pub fn eks() -> Self {
        Self {
            name: "eks",
            catalog: catalogs::eks(),
            durations: [[secs(40), secs(20), secs(60)], [mins(10), mins(8), mins(6)], [mins(4), mins(3), mins(4)]],
        }
    }

    pub fn aks() -> Self {
        Self {
            name: "aks",
            catalog: catalogs::aks(),
            durations: [[secs(30), secs(20), secs(45)], [mins(6), mins(5), mins(5)], [mins(4), mins(3), mins(3)]],
        }
    }

    pub fn gke() -> Self {
        Self {
            name: "gke",
            catalog: catalogs::gke(),
            durations: [[secs(30), secs(20), secs(40)], [mins(4), mins(4), mins(3)], [mins(3), mins(3), mins(3)]],
        }
    }

    pub fn kind() -> Self {
        Self {
            name: "kind",
            catalog: catalogs::kind(),
            durations: [[secs(2), secs(1), secs(2)], [secs(40), secs(30), secs(10)], [secs(20), secs(15), secs(10)]],
        }
    }
}
