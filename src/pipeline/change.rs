//! ## Overview
//!
//! A policy change: the document that moves a state from its bound policy to a new one. It is
//! made by `tessera policy plan NEW -o CHANGE` against the state, signed by approvers like a plan
//! (`tessera approve CHANGE`), and applied only by `tessera pipeline apply CHANGE`, which checks
//! the signatures against the lane the *current* policy names (`pipeline.policyLane`): a policy
//! cannot approve itself.
//!
//! Its digest covers the state lineage, the digests of both policies, the new text and when it
//! was made; loading recomputes it, so an edited change is refused.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::plan::Approval;

pub const KIND: &str = "PolicyChange";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyChange {
    pub kind: String,
    pub lineage: String,
    /// The digest of the policy the state is bound to now.
    pub from: String,
    /// The digest of `policy`.
    pub to: String,
    /// The new policy's text.
    pub policy: String,
    pub made_at: u64,
    pub digest: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approval>,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ChangeError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a policy change: {reason}")]
    #[diagnostic(code(tessera::policy::change_format))]
    Malformed { path: PathBuf, reason: String },
    #[error("{path} was modified after it was made (digest {found} does not match its content {computed})")]
    #[diagnostic(code(tessera::policy::change_tampered), help("make a fresh change with `tessera policy plan`"))]
    Tampered { path: PathBuf, found: String, computed: String },
}

fn content_digest(lineage: &str, from: &str, to: &str, policy: &str, made_at: u64) -> String {
    #[derive(Serialize)]
    struct Content<'a> {
        kind: &'a str,
        lineage: &'a str,
        from: &'a str,
        to: &'a str,
        policy: &'a str,
        made_at: u64,
    }
    let content = Content { kind: KIND, lineage, from, to, policy, made_at };
    hex::encode(Sha256::digest(serde_json::to_vec(&content).unwrap_or_default()))
}

/// Whether a document's JSON says it is a policy change (rather than a plan).
pub fn is_policy_change(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Kind {
        kind: Option<String>,
    }
    serde_json::from_str::<Kind>(text).is_ok_and(|k| k.kind.as_deref() == Some(KIND))
}

impl PolicyChange {
    pub fn new(lineage: &str, from: &str, policy: &str) -> Self {
        let to = super::bound::digest(policy);
        let made_at = crate::state::now_secs();
        Self {
            kind: KIND.into(),
            lineage: lineage.into(),
            digest: content_digest(lineage, from, &to, policy, made_at),
            from: from.into(),
            to,
            policy: policy.into(),
            made_at,
            approvals: Vec::new(),
        }
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ChangeError> {
        let malformed = |reason: String| ChangeError::Malformed { path: path.into(), reason };
        let change: Self = serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?;
        if change.kind != KIND {
            return Err(malformed(format!("kind `{}`, expected `{KIND}`", change.kind)));
        }
        let computed = content_digest(&change.lineage, &change.from, &change.to, &change.policy, change.made_at);
        if computed != change.digest || super::bound::digest(&change.policy) != change.to {
            return Err(ChangeError::Tampered { path: path.into(), found: change.digest, computed });
        }
        Ok(change)
    }

    pub fn load(path: &Path) -> Result<Self, ChangeError> {
        let text = crate::bounded::read_to_string(path, crate::bounded::PLAN)
            .map_err(|source| ChangeError::Io { path: path.into(), source })?;
        Self::parse(path, &text)
    }

    pub fn save(&self, path: &Path) -> Result<(), ChangeError> {
        let io = |source| ChangeError::Io { path: path.into(), source };
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(self).unwrap_or_default()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edited_change_is_refused() {
        let change = PolicyChange::new("lineage-1", "aaaa", "apiVersion: x\n");
        let text = serde_json::to_string(&change).unwrap();
        assert!(is_policy_change(&text) && !is_policy_change("{\"digest\": \"x\", \"plan\": {}}"));
        assert_eq!(PolicyChange::parse(Path::new("c.json"), &text).unwrap(), change);
        let edited = text.replace("apiVersion: x", "apiVersion: y");
        assert!(matches!(PolicyChange::parse(Path::new("c.json"), &edited), Err(ChangeError::Tampered { .. })));
        // Recomputing the digest over an edited text is caught too: `to` names the old text.
        let mut forged = change.clone();
        forged.policy = "apiVersion: y\n".into();
        forged.digest = content_digest(&forged.lineage, &forged.from, &forged.to, &forged.policy, forged.made_at);
        let forged = serde_json::to_string(&forged).unwrap();
        assert!(matches!(PolicyChange::parse(Path::new("c.json"), &forged), Err(ChangeError::Tampered { .. })));
    }
}
