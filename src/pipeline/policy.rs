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
//! pipeline:               # the pipeline's identity, pinned (`tessera creds identity` prints both)
//!   recipient: age1…      # only the holder of its identity may `pipeline apply`
//!   auditKey: <hex>       # the key that signs the audit chain
//!   policyLane: infra     # who approves a change of this file
//! ```
//! Patterns are exact names, `*`, `prefix*` or `*suffix`.
//!
//! A policy is refused unless every lane and every escalation can be satisfied by the approvers
//! it has: an approval that can never be gathered is a rule nobody can follow.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

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
    #[serde(default)]
    pub pipeline: Option<PipelineSection>,
}

/// The pinned pipeline: who alone may `pipeline apply`, and which key signs the audit chain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PipelineSection {
    /// The age recipient of the pipeline's identity.
    pub recipient: String,
    /// The ed25519 public key (hex) derived from that identity, that signs audit records.
    pub audit_key: String,
    /// The lane whose approvals a change of the policy itself needs.
    pub policy_lane: String,
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
    /// What `tessera reconcile` may do about drift on this lane's placements.
    #[serde(default)]
    pub reconcile: LaneMode,
}

/// A lane's `reconcile`: report drift (the default), or undo it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LaneMode {
    /// Report drift; change nothing.
    #[default]
    Report,
    /// Apply the actions that undo drift (never spec changes, never on a pipeline-only placement).
    CorrectDrift,
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

/// A parser's message about a policy file, without any of the file's content: the path given as
/// `--policy` may name any file (a link to the pipeline's identity), and its bytes must not reach
/// a CI log. Only the first line is kept (later ones quote the source), and every quoted part is
/// elided.
fn without_content(message: &str) -> String {
    let first = message.lines().next().unwrap_or_default();
    let mut out = String::with_capacity(first.len());
    let mut quote: Option<char> = None;
    for c in first.chars() {
        match quote {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                quote = None;
            }
            Some(_) => {}
            None if c == '`' || c == '"' => {
                out.push(c);
                quote = Some(c);
            }
            None => out.push(c),
        }
    }
    if quote.is_some() {
        out.push('…');
    }
    out
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

    /// Whether a resource this escalation applies to could be in `lane`. A type names its
    /// provider kind before the dot (`eks.cluster`); a pattern whose kind is literal reaches only
    /// lanes that cover that kind, any other pattern reaches every lane.
    fn may_reach(&self, lane: &Lane) -> bool {
        let Some(types) = &self.types else { return true };
        types.iter().any(|t| match t.split_once('.') {
            Some((kind, _)) if !kind.contains('*') => any_match(&lane.providers, kind),
            _ => true,
        })
    }
}

impl Policy {
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = crate::bounded::read_to_string(path, crate::bounded::SMALL)
            .map_err(|source| PolicyError::Io { path: path.into(), source })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, PolicyError> {
        let invalid = |message: String| PolicyError::Invalid { path: path.into(), message };
        let p: Policy = serde_saphyr::from_str(text).map_err(|e| invalid(without_content(&e.to_string())))?;
        if p.api_version != crate::spec::API_VERSION || p.kind != "Policy" {
            return Err(invalid(format!("expected apiVersion {} and kind Policy", crate::spec::API_VERSION)));
        }
        let lanes: HashSet<&str> = p.lanes.iter().map(|l| l.name.as_str()).collect();
        let mut names = HashSet::new();
        let mut keys_seen = std::collections::HashMap::new();
        for a in &p.approvers {
            if !names.insert(a.name.as_str()) {
                return Err(invalid(format!("approver `{}` is listed twice", a.name)));
            }
            let key = keys::parse_public(&a.key).map_err(|e| invalid(format!("approver `{}`: {e}", a.name)))?;
            // Compared decoded: the same key in another hex case is the same approver.
            if let Some(first) = keys_seen.insert(key.to_bytes(), a.name.as_str()) {
                return Err(invalid(format!(
                    "approvers `{first}` and `{}` have the same key: one key is one approver, and its signature counts once",
                    a.name
                )));
            }
            if let Some(l) = a.lanes.iter().find(|l| !lanes.contains(l.as_str())) {
                return Err(invalid(format!("approver `{}` is in lane `{l}`, which is not defined", a.name)));
            }
        }
        for lane in &p.lanes {
            let members = p.members(&lane.name).count();
            if lane.approvals == 0 || lane.approvals > members {
                return Err(invalid(format!(
                    "lane `{}` needs {} approvals but has {members} approvers",
                    lane.name, lane.approvals
                )));
            }
        }
        for (i, e) in p.escalations.iter().enumerate() {
            for lane in p.lanes.iter().filter(|l| e.may_reach(l)) {
                let members = p.members(&lane.name).count();
                if e.approvals > members {
                    return Err(invalid(format!(
                        "escalation {} ({} of {}) needs {} approvals, but lane `{}` has {members} approver(s): \
                         those actions in that lane could never be approved (narrow the escalation's `types`, \
                         e.g. `eks.cluster`, or add approvers to the lane)",
                        i + 1,
                        e.actions.join("/"),
                        e.types.as_ref().map_or("every type".to_string(), |t| t.join(", ")),
                        e.approvals,
                        lane.name
                    )));
                }
            }
        }
        if let Some(pipe) = &p.pipeline {
            if age::x25519::Recipient::from_str(pipe.recipient.trim()).is_err() {
                return Err(invalid(format!(
                    "pipeline.recipient `{}` is not an age recipient (age1…)",
                    pipe.recipient
                )));
            }
            keys::parse_public(&pipe.audit_key).map_err(|e| invalid(format!("pipeline.auditKey: {e}")))?;
            if !lanes.contains(pipe.policy_lane.as_str()) {
                return Err(invalid(format!("pipeline.policyLane `{}` is not a lane", pipe.policy_lane)));
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

    pub fn lane(&self, name: &str) -> Option<&Lane> {
        self.lanes.iter().find(|l| l.name == name)
    }

    /// The approver whose key this is, compared as decoded key bytes (never as text).
    pub fn approver_by_key(&self, key: &str) -> Option<&Approver> {
        let wanted = keys::parse_public(key).ok()?.to_bytes();
        self.approvers.iter().find(|a| keys::parse_public(&a.key).is_ok_and(|k| k.to_bytes() == wanted))
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

    fn policy(body: &str) -> Result<Policy, PolicyError> {
        let key = |b: u8| hex::encode(ed25519_dalek::SigningKey::from_bytes(&[b; 32]).verifying_key().to_bytes());
        let text = format!(
            "apiVersion: tessera.dev/v1alpha1\nkind: Policy\napprovers:\n\
             - {{ name: a, key: {}, lanes: [infra] }}\n- {{ name: b, key: {}, lanes: [infra] }}\n\
             - {{ name: c, key: {}, lanes: [infra, local] }}\n{body}",
            key(1),
            key(2),
            key(3)
        );
        Policy::parse(Path::new("policy.yaml"), &text)
    }

    #[test]
    fn escalations_and_lanes_must_be_satisfiable() {
        let lanes = "lanes:\n- { name: infra, approvals: 2, providers: [eks] }\n- { name: local, approvals: 1, providers: [kind, sim] }\n";
        // Every cluster type: reaches `local`, which has one approver.
        let err =
            policy(&format!("{lanes}escalations:\n- {{ actions: [delete], types: [\"*.cluster\"], approvals: 3 }}\n"))
                .unwrap_err()
                .to_string();
        assert!(err.contains("escalation 1") && err.contains("lane `local` has 1 approver"), "{err}");
        // Narrowed to eks: only `infra` (three approvers) is reached.
        policy(&format!("{lanes}escalations:\n- {{ actions: [delete], types: [eks.cluster], approvals: 3 }}\n"))
            .unwrap();
        let err =
            policy(&format!("{lanes}escalations:\n- {{ actions: [delete], types: [eks.cluster], approvals: 4 }}\n"))
                .unwrap_err()
                .to_string();
        assert!(err.contains("lane `infra` has 3 approver(s)"), "{err}");
        let err = policy("lanes:\n- { name: infra, approvals: 4 }\n- { name: local, approvals: 1 }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs 4 approvals but has 3"), "{err}");
    }

    #[test]
    fn the_pipeline_section_is_checked() {
        let lanes = "lanes:\n- { name: infra, approvals: 2 }\n- { name: local, approvals: 1, providers: [kind] }\n";
        let recipient = age::x25519::Identity::generate().to_public().to_string();
        let key = "aa".repeat(32);
        let audit = hex::encode(ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key().to_bytes());
        let ok =
            policy(&format!("{lanes}pipeline: {{ recipient: {recipient}, auditKey: {audit}, policyLane: infra }}\n"));
        assert_eq!(ok.unwrap().pipeline.unwrap().policy_lane, "infra");
        for (section, why) in [
            (format!("{{ recipient: age1nope, auditKey: {audit}, policyLane: infra }}"), "not an age recipient"),
            (format!("{{ recipient: {recipient}, auditKey: {}, policyLane: infra }}", &key[..10]), "auditKey"),
            (format!("{{ recipient: {recipient}, auditKey: {audit}, policyLane: ops }}"), "`ops` is not a lane"),
        ] {
            let err = policy(&format!("{lanes}pipeline: {section}\n")).unwrap_err().to_string();
            assert!(err.contains(why), "{section}: {err}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_policy_text_never_panics(text in "\\PC{0,300}") {
            let _ = Policy::parse(Path::new("p.yaml"), &text);
        }

        /// A file that is not a policy (an age identity, a credentials file) is refused without
        /// any of its content in the error.
        #[test]
        fn a_file_that_is_not_a_policy_is_never_echoed(secret in "[A-Z0-9]{20,40}", form in 0usize..4) {
            let text = match form {
                0 => format!("AGE-SECRET-KEY-1{secret}\n"),
                1 => format!("[default]\naws_secret_access_key = {secret}\n"),
                2 => format!("apiVersion: {secret}\nkind: Policy\n"),
                _ => format!("{{ \"{secret}\": 1 }}"),
            };
            let err = Policy::parse(Path::new("p.yaml"), &text).unwrap_err();
            let shown = format!("{err} {err:?}");
            prop_assert!(!shown.contains(&secret[..12]), "{}", shown);
        }
    }
}
