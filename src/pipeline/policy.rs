//! `policy.yaml`: who may approve what.
//!
//! ```yaml
//! apiVersion: tessera.dev/v1alpha1
//! kind: Policy
//! approvers:
//!   - { name: alice, key: <ed25519 public key, hex>, lanes: [infra] }
//! lanes:
//!   - { name: infra, approvals: 2, providers: [eks, aks, gke], placements: ["*"] }
//! escalations:            # actions that need more approvals
//!   - { actions: [delete, replace], types: ["*.cluster"], approvals: 3 }
//! pipelineOnly:           # default: every eks, aks and gke placement
//!   providers: [eks, aks, gke]
//!   placements: []
//! ```
//! Patterns are exact names, `*`, `prefix*` or `*suffix`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::keys;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Policy {
    pub api_version: String,
    pub kind: String,
    pub approvers: Vec<Approver>,
    pub lanes: Vec<Lane>,
    #[serde(default)]
    pub escalations: Vec<Escalation>,
    #[serde(default)]
    pub pipeline_only: Option<PipelineOnly>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approver {
    pub name: String,
    pub key: String,
    pub lanes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lane {
    pub name: String,
    pub approvals: usize,
    #[serde(default)]
    pub providers: Option<Vec<String>>,
    #[serde(default)]
    pub placements: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    pub actions: Vec<String>,
    #[serde(default)]
    pub types: Option<Vec<String>>,
    pub approvals: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineOnly {
    #[serde(default)]
    pub providers: Vec<String>,
    #[serde(default)]
    pub placements: Vec<String>,
}

pub const DEFAULT_PIPELINE_ONLY: [&str; 3] = ["eks", "aks", "gke"];

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PolicyError {
    #[error("cannot read policy {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    #[diagnostic(code(tessera::policy::invalid), help("see the policy format in the README"))]
    Invalid { path: PathBuf, message: String },
}

/// `*`, `prefix*`, `*suffix`, or an exact name.
pub fn matches(pattern: &str, name: &str) -> bool {
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        _ if pattern == "*" => true,
        (Some(suffix), _) => name.ends_with(suffix),
        (_, Some(prefix)) => name.starts_with(prefix),
        _ => pattern == name,
    }
}

fn any_match(patterns: &Option<Vec<String>>, name: &str) -> bool {
    patterns.as_ref().is_none_or(|ps| ps.iter().any(|p| matches(p, name)))
}

impl Lane {
    pub fn covers(&self, placement: &str, provider: &str) -> bool {
        any_match(&self.providers, provider) && any_match(&self.placements, placement)
    }
}

impl Escalation {
    pub fn applies(&self, action: &str, rtype: &str) -> bool {
        self.actions.iter().any(|a| a == action) && any_match(&self.types, rtype)
    }
}

impl Policy {
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io { path: path.into(), source })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, PolicyError> {
        let invalid = |message: String| PolicyError::Invalid { path: path.into(), message };
        let p: Policy = serde_saphyr::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if p.api_version != crate::spec::API_VERSION || p.kind != "Policy" {
            return Err(invalid(format!("expected apiVersion {} and kind Policy", crate::spec::API_VERSION)));
        }
        let lanes: HashSet<&str> = p.lanes.iter().map(|l| l.name.as_str()).collect();
        let mut names = HashSet::new();
        for a in &p.approvers {
            if !names.insert(a.name.as_str()) {
                return Err(invalid(format!("approver `{}` is listed twice", a.name)));
            }
            keys::parse_public(&a.key).map_err(|e| invalid(format!("approver `{}`: {e}", a.name)))?;
            if let Some(l) = a.lanes.iter().find(|l| !lanes.contains(l.as_str())) {
                return Err(invalid(format!("approver `{}` is in lane `{l}`, which is not defined", a.name)));
            }
        }
        for lane in &p.lanes {
            let members = p.approvers.iter().filter(|a| a.lanes.contains(&lane.name)).count();
            if lane.approvals == 0 || lane.approvals > members {
                return Err(invalid(format!(
                    "lane `{}` needs {} approvals but has {members} approvers",
                    lane.name, lane.approvals
                )));
            }
        }
        Ok(p)
    }

    /// Whether a placement may be changed only by `tessera pipeline apply`.
    pub fn is_pipeline_only(&self, placement: &str, provider: &str) -> bool {
        match &self.pipeline_only {
            Some(po) => {
                po.providers.iter().any(|p| matches(p, provider)) || po.placements.iter().any(|p| matches(p, placement))
            }
            None => DEFAULT_PIPELINE_ONLY.contains(&provider),
        }
    }

    pub fn members(&self, lane: &str) -> impl Iterator<Item = &Approver> {
        self.approvers.iter().filter(move |a| a.lanes.iter().any(|l| l == lane))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn patterns() {
        assert!(matches("*", "x"));
        assert!(matches("aws-*", "aws-eu"));
        assert!(matches("*.cluster", "eks.cluster"));
        assert!(!matches("*.cluster", "eks.nodegroup"));
        assert!(matches("local", "local") && !matches("local", "local2"));
    }

    proptest! {
        #[test]
        fn arbitrary_policy_text_never_panics(text in "\\PC{0,300}") {
            let _ = Policy::parse(Path::new("p.yaml"), &text);
        }
    }
}
