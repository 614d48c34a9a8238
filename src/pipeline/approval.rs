//! Checking approvals against the policy: valid signatures, from approvers in the lane that
//! covers each action, at least as many as the lane (or an escalation) requires. A policy change
//! needs the lane the current policy names for it; a plan applied locally with `apply --plan`
//! needs at least one signature from the policy, so that a plan edited and re-hashed is refused.

use std::collections::BTreeSet;

use super::authority::Authority;
use super::keys;
use super::policy::Policy;
use crate::plan::{ActionKind, Approval, PlanFile};

#[derive(Debug, thiserror::Error, miette::Diagnostic, PartialEq, Eq)]
pub enum Refusal {
    #[error("the plan is not approved: it carries no signatures")]
    #[diagnostic(code(tessera::pipeline::unsigned), help("approvers sign it with `tessera approve PLAN --key KEY`"))]
    Unsigned,
    #[error("the signature by `{0}` is not valid for this plan")]
    #[diagnostic(
        code(tessera::pipeline::bad_signature),
        help("the plan may have changed since it was signed; make and approve a new one")
    )]
    BadSignature(String),
    #[error("`{0}` signed, but that key is not an approver in policy.yaml")]
    #[diagnostic(code(tessera::pipeline::unknown_key))]
    UnknownKey(String),
    #[error("no lane in policy.yaml may touch {address} (placement `{placement}`, provider `{provider}`)")]
    #[diagnostic(code(tessera::pipeline::no_lane))]
    NoLane { address: String, placement: String, provider: String },
    #[error("{address} needs {need} approval(s) from lane `{lane}`, it has {have}")]
    #[diagnostic(code(tessera::pipeline::too_few), help("ask more of the lane's approvers to run `tessera approve`"))]
    TooFew { address: String, lane: String, need: usize, have: usize },
}

fn action_name(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::Create => "create",
        ActionKind::Update => "update",
        ActionKind::Replace => "replace",
        ActionKind::Delete => "delete",
    }
}

/// The names of the approvers who signed `digest`. Every signature must be valid and by a key
/// of the policy: one bad signature refuses the document, since it says someone tampered.
fn signers<'p>(policy: &'p Policy, digest: &str, approvals: &[Approval]) -> Result<BTreeSet<&'p str>, Refusal> {
    if approvals.is_empty() {
        return Err(Refusal::Unsigned);
    }
    let mut valid: BTreeSet<&str> = BTreeSet::new();
    for a in approvals {
        let approver = policy.approver_by_key(&a.key).ok_or_else(|| Refusal::UnknownKey(a.approver.clone()))?;
        let public = keys::parse_public(&approver.key).map_err(|_| Refusal::UnknownKey(a.approver.clone()))?;
        if !keys::verify(&public, digest, &a.signature) {
            return Err(Refusal::BadSignature(approver.name.clone()));
        }
        valid.insert(approver.name.as_str());
    }
    Ok(valid)
}

/// For `apply --plan` under a policy: the plan is signed by at least one of its approvers.
pub fn check_signed(policy: &Policy, file: &PlanFile) -> Result<Vec<String>, Refusal> {
    Ok(signers(policy, &file.digest, &file.approvals)?.into_iter().map(str::to_string).collect())
}

/// For a policy change: enough approvals from `lane` of the current policy.
pub fn check_lane(policy: &Policy, digest: &str, approvals: &[Approval], lane: &str) -> Result<Vec<String>, Refusal> {
    let valid = signers(policy, digest, approvals)?;
    let need = policy.lane(lane).map_or(usize::MAX, |l| l.approvals);
    let have = policy.members(lane).filter(|m| valid.contains(m.name.as_str())).count();
    if have < need {
        return Err(Refusal::TooFew { address: "the policy change".into(), lane: lane.into(), need, have });
    }
    Ok(valid.into_iter().map(str::to_string).collect())
}

/// What one lane must give a plan: the most approvals any of its actions needs (the lane's own
/// count, or an escalation's), and the action that needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneNeed {
    pub lane: String,
    pub need: usize,
    /// The action that needs the most.
    pub address: String,
}

/// Per lane, what a plan needs. Every lane that covers an action's placement (through any
/// provider that acts for it, see [`Authority`]) must approve it, so the strictest lane always
/// has its way. An action no lane covers is refused.
pub fn needs(policy: &Policy, plan: &crate::plan::Plan, authority: &Authority) -> Result<Vec<LaneNeed>, Refusal> {
    let mut authority = authority.clone();
    for action in &plan.actions {
        authority.add(&action.address.placement, &action.provider);
    }
    let mut by_lane: std::collections::BTreeMap<String, LaneNeed> = std::collections::BTreeMap::new();
    for action in &plan.actions {
        let (placement, provider, rtype) = (&action.address.placement, &action.provider.kind, &action.address.rtype);
        let lanes = policy.lanes_for(&authority, placement);
        if lanes.is_empty() {
            return Err(Refusal::NoLane {
                address: action.address.to_string(),
                placement: placement.clone(),
                provider: provider.clone(),
            });
        }
        let escalated = policy
            .escalations
            .iter()
            .filter(|e| e.applies(action_name(action.kind), rtype))
            .map(|e| e.approvals)
            .max()
            .unwrap_or(0);
        for lane in lanes {
            let need = lane.approvals.max(escalated);
            let entry = by_lane.entry(lane.name.clone()).or_insert_with(|| LaneNeed {
                lane: lane.name.clone(),
                need: 0,
                address: action.address.to_string(),
            });
            if need > entry.need {
                entry.need = need;
                entry.address = action.address.to_string();
            }
        }
    }
    Ok(by_lane.into_values().collect())
}

/// How many of `lane`'s approvers are among `signers`.
pub fn have(policy: &Policy, lane: &str, signers: &BTreeSet<&str>) -> usize {
    policy.members(lane).filter(|m| signers.contains(m.name.as_str())).count()
}

/// The approvers whose signatures count, if the plan is sufficiently approved (see [`needs`]).
pub fn check(policy: &Policy, file: &PlanFile, authority: &Authority) -> Result<Vec<String>, Refusal> {
    let valid = signers(policy, &file.digest, &file.approvals)?;
    for n in needs(policy, &file.plan, authority)? {
        let have = have(policy, &n.lane, &valid);
        if have < n.need {
            return Err(Refusal::TooFew { address: n.address, lane: n.lane, need: n.need, have });
        }
    }
    Ok(valid.into_iter().map(str::to_string).collect())
}

/// Each signature on a document, for showing: who, and whether it counts (`None`) or why not.
pub fn signatures(policy: &Policy, digest: &str, approvals: &[Approval]) -> Vec<(String, Option<Refusal>)> {
    approvals
        .iter()
        .map(|a| match signers(policy, digest, std::slice::from_ref(a)) {
            Ok(names) => (names.into_iter().next().unwrap_or_default().to_string(), None),
            Err(e) => (a.approver.clone(), Some(e)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use ed25519_dalek::SigningKey;

    use super::*;

    #[test]
    fn one_key_counts_once_however_often_and_in_whatever_case_it_signs() {
        let alice = SigningKey::from_bytes(&[1; 32]);
        let bob = SigningKey::from_bytes(&[2; 32]);
        let hex_of = |k: &SigningKey| hex::encode(k.verifying_key().to_bytes());
        let text = format!(
            "apiVersion: tessera.dev/v1alpha1\nkind: Policy\napprovers:\n- {{ name: alice, key: {}, lanes: [infra] }}\n\
             - {{ name: bob, key: {}, lanes: [infra] }}\nlanes:\n- {{ name: infra, approvals: 2 }}\n",
            hex_of(&alice),
            hex_of(&bob)
        );
        let policy = Policy::parse(Path::new("policy.yaml"), &text).unwrap();
        let digest = "d".repeat(64);
        let by =
            |k: &SigningKey, key: String| Approval { approver: "x".into(), key, signature: keys::sign(k, &digest) };
        let twice = [by(&alice, hex_of(&alice)), by(&alice, hex_of(&alice).to_uppercase())];
        let counted = signers(&policy, &digest, &twice).unwrap();
        assert_eq!(counted.len(), 1, "{counted:?}");
        assert_eq!(have(&policy, "infra", &counted), 1);
        let both = [by(&alice, hex_of(&alice)), by(&bob, format!(" {} ", hex_of(&bob)))];
        assert_eq!(have(&policy, "infra", &signers(&policy, &digest, &both).unwrap()), 2);
    }
}
