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
    /// Per chart, what its workloads' coverage was checked against.
    #[serde(skip)]
    pub chart_checks: Vec<ChartCheck>,
}

/// What a chart's workloads were checked against at validation: what `helm template` rendered
/// (helm and the chart were on this machine), or Tessera's model of the chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChartCheck {
    /// The chart's reference (`oci://…`).
    pub chart: String,
    pub version: String,
    pub rendered: bool,
    /// Why helm's rendering could not be had, when the model was used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ChartCheck {
    /// One line: which chart, and what its coverage was checked against.
    pub fn describe(&self) -> String {
        let name = self.chart.rsplit('/').next().unwrap_or(&self.chart);
        if self.rendered {
            return format!("chart `{name}` {}: coverage checked against helm's rendering", self.version);
        }
        format!(
            "chart `{name}` {}: coverage checked against Tessera's model of it; helm or the chart is not available locally ({})",
            self.version,
            self.reason.as_deref().unwrap_or("not rendered")
        )
    }
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
