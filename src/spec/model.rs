//! The normalized fleet: defaults applied, overrides merged, every value checked.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
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
    /// The waves `apply` changes placements in; `None`: all at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
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

/// The order in which `apply` changes placements: waves, each soaked and gated before the next
/// starts. A fleet without one changes every placement at once, ungated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    pub waves: Vec<Wave>,
    /// As written (`10m`), and in milliseconds.
    pub soak: String,
    pub soak_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Wave {
    /// The spec's placements this wave takes, in spec order.
    pub placements: Vec<String>,
    /// The names and patterns as written: a placement that is no longer in the spec (being
    /// deleted) joins the first wave whose pattern matches it.
    pub patterns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<u32>,
    /// `None`: the wave is not gated (`gate: none`).
    pub gate: Option<Gate>,
}

impl Wave {
    /// Whether one of this wave's names or patterns matches `placement`.
    pub fn names(&self, placement: &str) -> bool {
        self.patterns.iter().any(|p| wildmatch::WildMatch::new(p).matches(placement))
    }
}

/// What a wave's placements must show, after the soak, before the next wave starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gate {
    pub coverage: bool,
    pub nodes_ready: bool,
    pub alerts_firing: AlertsFiring,
}

impl Default for Gate {
    fn default() -> Self {
        Self { coverage: true, nodes_ready: true, alerts_firing: AlertsFiring::None }
    }
}

/// Which firing alerts a gate tolerates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertsFiring {
    /// No alert of severity `critical` may be firing for the placement.
    None,
    /// Alerts are not read.
    Any,
}

impl Rollout {
    /// The wave a placement belongs to: the first that takes it (a placement of the spec), or
    /// whose pattern matches it (a placement being deleted), else the last.
    pub fn wave_of(&self, placement: &str) -> usize {
        self.waves
            .iter()
            .position(|w| w.placements.iter().any(|p| p == placement))
            .or_else(|| self.waves.iter().position(|w| w.names(placement)))
            .unwrap_or(self.waves.len().saturating_sub(1))
    }
}

impl Gate {
    /// What the gate checks, in words.
    pub fn describe(&self) -> String {
        let mut checks = Vec::new();
        if self.nodes_ready {
            checks.push("every node Ready");
        }
        if self.coverage {
            checks.push("core services on every node");
        }
        if self.alerts_firing == AlertsFiring::None {
            checks.push("no critical alert firing");
        }
        if checks.is_empty() {
            return "nothing checked".into();
        }
        checks.join(", ")
    }
}
