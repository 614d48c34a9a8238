//! The normalized fleet: defaults applied, overrides merged, every value checked.

use std::path::PathBuf;

use serde::Serialize;
use sha2::{Digest, Sha256};
use tessera_provider_api::{ClusterTemplate, ProviderRef};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fleet {
    pub name: String,
    pub placements: Vec<Placement>,
    #[serde(skip)]
    pub source: PathBuf,
    /// Valid but worth saying: a core service turned off, logs with nowhere to go.
    #[serde(skip)]
    pub warnings: Vec<crate::spec::Problem>,
}

/// One cluster of the fleet: where it goes and what it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Placement {
    pub name: String,
    pub provider: ProviderRef,
    pub cluster: ClusterTemplate,
    /// Where the placement's Kubernetes version is written (the template's or its override).
    #[serde(skip)]
    pub version_site: crate::spec::Site,
}

impl Fleet {
    /// Digest of the normalized fleet, so that reformatting or comments do not make a plan
    /// stale, while any change of meaning does.
    pub fn digest(&self) -> String {
        let body = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(body))
    }

    pub fn placement(&self, name: &str) -> Option<&Placement> {
        self.placements.iter().find(|p| p.name == name)
    }
}
