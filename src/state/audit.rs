//! ## Overview
//!
//! The audit log: one record per pipeline apply (and per policy change), chained by SHA-256 and
//! signed by the pipeline. The state layer owns the chain: it appends records in the same fenced
//! transaction as the run, so the hashing and signing live here and the pipeline only says what a
//! record holds.
//!
//! `hash(n) = sha256(hash(n-1) ‖ record(n))`, with `hash(0)` the genesis constant. Each stored
//! record is a [`SignedEntry`]: the body, the digest of the policy it was made under, the
//! pipeline's audit key, and an ed25519 signature over all of that *and the previous hash*. So
//! without the pipeline's key:
//! - a changed record fails its signature (recomputing the hashes does not help);
//! - a removed or reordered record breaks the chain, and the next record's signature names the
//!   hash it followed;
//! - the key is anchored by the policy: the last record must be signed by the current policy's
//!   audit key, and a key (or policy) may change only at a policy change, whose signed record
//!   names the next one;
//! - removing the newest records and rewinding the head hash is the one thing a chain cannot see
//!   by itself: `audit verify --head HASH` checks it against a head stored outside the state.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::AuditRow;

pub const GENESIS: &str = "tessera-audit-genesis";
/// Signed messages begin with this, so an audit signature is never valid as anything else.
const DOMAIN: &str = "tessera-audit-v1";

/// What a pipeline apply records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at: u64,
    pub plan_digest: String,
    pub fleet: String,
    pub approvers: Vec<String>,
    /// `address: outcome` for every step.
    pub outcomes: Vec<String>,
}

/// What a policy change records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyChangeRecord {
    pub at: u64,
    pub policy_from: String,
    pub policy_to: String,
    /// The digest of the approved change document.
    pub change_digest: String,
    pub approvers: Vec<String>,
}

/// A record's body, for display.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Body {
    Policy(PolicyChangeRecord),
    Apply(AuditRecord),
}

/// At a policy change: the policy and key that sign from the next record on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Handoff {
    pub policy: String,
    pub key: String,
}

/// One stored record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedEntry {
    /// The record ([`AuditRecord`] or [`PolicyChangeRecord`]) as JSON.
    pub body: String,
    /// Digest of the policy the record was made under.
    pub policy: String,
    /// The pipeline's audit key (ed25519 public key, hex).
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<Handoff>,
    /// ed25519 over the signed message (see `message`), hex.
    pub signature: String,
}

/// The signed bytes: JSON of a struct with a fixed field order, so it is the same everywhere.
fn message(prev: &str, body: &str, policy: &str, key: &str, handoff: Option<&Handoff>) -> Vec<u8> {
    #[derive(Serialize)]
    struct Signed<'a> {
        domain: &'a str,
        prev: &'a str,
        body: &'a str,
        policy: &'a str,
        key: &'a str,
        handoff: Option<&'a Handoff>,
    }
    serde_json::to_vec(&Signed { domain: DOMAIN, prev, body, policy, key, handoff }).unwrap_or_default()
}

/// Signs records for the chain: the pipeline's audit key and the policy it runs under.
pub struct AuditSigner {
    key: SigningKey,
    policy: String,
}

impl AuditSigner {
    pub fn new(key: SigningKey, policy_digest: impl Into<String>) -> Self {
        Self { key, policy: policy_digest.into() }
    }

    pub fn public_hex(&self) -> String {
        hex::encode(self.key.verifying_key().to_bytes())
    }

    /// The stored form of `body`, following the record whose hash is `prev`.
    pub fn entry(&self, prev: &str, body: &str, handoff: Option<Handoff>) -> String {
        let key = self.public_hex();
        let signature = self.key.sign(&message(prev, body, &self.policy, &key, handoff.as_ref()));
        let entry = SignedEntry {
            body: body.to_string(),
            policy: self.policy.clone(),
            key,
            handoff,
            signature: hex::encode(signature.to_bytes()),
        };
        serde_json::to_string(&entry).unwrap_or_default()
    }
}

pub fn chain(prev: &str, record: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(record.as_bytes());
    hex::encode(h.finalize())
}

#[derive(Debug, thiserror::Error, miette::Diagnostic, PartialEq, Eq)]
pub enum AuditError {
    #[error("audit record {seq} was changed (its hash does not match its content)")]
    Changed { seq: i64 },
    #[error("audit record {seq} does not follow record {prev}: records were removed or reordered")]
    Broken { seq: i64, prev: i64 },
    #[error("the newest audit records were removed (head is {head}, chain ends at {end})")]
    Truncated { head: String, end: String },
    #[error("audit record {seq} is not signed by the pipeline")]
    #[diagnostic(code(tessera::audit::unsigned))]
    Unsigned { seq: i64 },
    #[error("audit record {seq} was changed or moved: its signature does not match")]
    #[diagnostic(code(tessera::audit::bad_signature))]
    BadSignature { seq: i64 },
    #[error(
        "audit record {seq} is signed by {found}, but the chain hands on to {expected} (keys change only at a policy change)"
    )]
    #[diagnostic(code(tessera::audit::wrong_key))]
    WrongKey { seq: i64, expected: String, found: String },
    #[error(
        "audit record {seq} names policy {found}, but the chain hands on to {expected} (policies change only at a policy change)"
    )]
    #[diagnostic(code(tessera::audit::wrong_policy))]
    WrongPolicy { seq: i64, expected: String, found: String },
    #[error("the audit chain ends with key {found}, not the policy's audit key {expected}")]
    #[diagnostic(
        code(tessera::audit::not_pipeline_key),
        help("the chain was re-signed with another key, or the policy's `pipeline.auditKey` is wrong")
    )]
    NotPipelineKey { expected: String, found: String },
    #[error("the audit chain ends under policy {found}, but state is bound to {}", expected.as_deref().unwrap_or("no policy"))]
    #[diagnostic(
        code(tessera::audit::policy),
        help("the state's policy binding was changed outside an approved policy change")
    )]
    PolicyMismatch { expected: Option<String>, found: String },
    #[error("the audit chain has records, but the policy names no audit key (`pipeline.auditKey`)")]
    #[diagnostic(code(tessera::audit::no_key))]
    NoAuditKey,
    #[error("the head {0} is not in the audit chain: records were removed, rewritten or replaced")]
    #[diagnostic(
        code(tessera::audit::head_not_found),
        help("the head was published by an earlier pipeline run; a chain that grew from it still contains it")
    )]
    HeadNotFound(String),
}

/// What the chain is checked against, besides itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Anchors<'a> {
    /// The current policy's audit key (hex).
    pub key: Option<&'a str>,
    /// The digest of the policy the state is bound to.
    pub policy: Option<&'a str>,
    /// A head hash stored outside the state.
    pub head: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub records: usize,
    /// The hash of the newest record.
    pub head: Option<String>,
    /// With an external head: how many records follow it.
    pub after_head: Option<usize>,
}

/// Checks the whole chain: hashes and order, the head state recorded, every signature, the hand-on
/// of keys and policies, and the anchors.
pub fn verify(rows: &[AuditRow], state_head: Option<&str>, anchors: Anchors<'_>) -> Result<Verified, AuditError> {
    let mut prev = GENESIS.to_string();
    let mut last_seq = 0;
    // The (policy, key) the next record must carry; unknown before the first.
    let mut expected: Option<(String, String)> = None;
    for row in rows {
        if row.prev != prev || row.seq != last_seq + 1 {
            return Err(AuditError::Broken { seq: row.seq, prev: last_seq });
        }
        if chain(&row.prev, &row.record) != row.hash {
            return Err(AuditError::Changed { seq: row.seq });
        }
        let entry: SignedEntry =
            serde_json::from_str(&row.record).map_err(|_| AuditError::Unsigned { seq: row.seq })?;
        if !signature_holds(&row.prev, &entry) {
            return Err(AuditError::BadSignature { seq: row.seq });
        }
        if let Some((policy, key)) = &expected {
            if *key != entry.key {
                return Err(AuditError::WrongKey { seq: row.seq, expected: key.clone(), found: entry.key });
            }
            if *policy != entry.policy {
                return Err(AuditError::WrongPolicy { seq: row.seq, expected: policy.clone(), found: entry.policy });
            }
        }
        expected = Some(match entry.handoff {
            Some(h) => (h.policy, h.key),
            None => (entry.policy, entry.key),
        });
        prev = row.hash.clone();
        last_seq = row.seq;
    }
    let end = if rows.is_empty() { None } else { Some(prev.as_str()) };
    if state_head != end {
        return Err(AuditError::Truncated {
            head: state_head.unwrap_or("(none)").into(),
            end: end.unwrap_or("(none)").into(),
        });
    }
    if let Some((policy, key)) = &expected {
        let anchor = anchors.key.ok_or(AuditError::NoAuditKey)?;
        if anchor != key {
            return Err(AuditError::NotPipelineKey { expected: anchor.into(), found: key.clone() });
        }
        if anchors.policy != Some(policy.as_str()) {
            return Err(AuditError::PolicyMismatch {
                expected: anchors.policy.map(str::to_string),
                found: policy.clone(),
            });
        }
    }
    let after_head = match anchors.head {
        None => None,
        Some(h) if h == GENESIS => Some(rows.len()),
        Some(h) => match rows.iter().position(|r| r.hash == h) {
            Some(i) => Some(rows.len() - i - 1),
            None => return Err(AuditError::HeadNotFound(h.to_string())),
        },
    };
    Ok(Verified { records: rows.len(), head: end.map(str::to_string), after_head })
}

fn signature_holds(prev: &str, entry: &SignedEntry) -> bool {
    let Ok(key) = hex::decode(&entry.key) else { return false };
    let Ok(key): Result<[u8; 32], _> = key.try_into() else { return false };
    let Ok(key) = VerifyingKey::from_bytes(&key) else { return false };
    let Ok(sig) = hex::decode(&entry.signature) else { return false };
    let Ok(sig): Result<[u8; 64], _> = sig.try_into() else { return false };
    let msg = message(prev, &entry.body, &entry.policy, &entry.key, entry.handoff.as_ref());
    key.verify(&msg, &Signature::from_bytes(&sig)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(seed: u8, policy: &str) -> AuditSigner {
        AuditSigner::new(SigningKey::from_bytes(&[seed; 32]), policy)
    }

    /// A chain built the way the stores build it.
    fn build(entries: &[(&AuditSigner, &str, Option<Handoff>)]) -> Vec<AuditRow> {
        let mut rows: Vec<AuditRow> = Vec::new();
        for (i, (s, body, handoff)) in entries.iter().enumerate() {
            let prev = rows.last().map_or(GENESIS.to_string(), |r| r.hash.clone());
            let record = s.entry(&prev, body, handoff.clone());
            rows.push(AuditRow { seq: i as i64 + 1, hash: chain(&prev, &record), record, prev });
        }
        rows
    }

    fn anchors<'a>(key: &'a str, policy: &'a str) -> Anchors<'a> {
        Anchors { key: Some(key), policy: Some(policy), head: None }
    }

    #[test]
    fn a_signed_chain_verifies_and_a_rewritten_one_does_not() {
        let pipeline = signer(1, "p1");
        let key = pipeline.public_hex();
        let rows = build(&[(&pipeline, "one", None), (&pipeline, "two", None)]);
        let head = rows[1].hash.clone();
        let ok = verify(&rows, Some(&head), anchors(&key, "p1")).unwrap();
        assert_eq!((ok.records, ok.head.as_deref()), (2, Some(head.as_str())));

        // Rewritten body, hashes recomputed: the signature fails.
        let mut forged = rows.clone();
        let mut entry: SignedEntry = serde_json::from_str(&forged[1].record).unwrap();
        entry.body = "mallory".into();
        forged[1].record = serde_json::to_string(&entry).unwrap();
        forged[1].hash = chain(&forged[1].prev, &forged[1].record);
        assert_eq!(
            verify(&forged, Some(&forged[1].hash.clone()), anchors(&key, "p1")),
            Err(AuditError::BadSignature { seq: 2 })
        );

        // Re-signed entirely by another key: the policy's key anchors the end.
        let mallory = signer(2, "p1");
        let resigned = build(&[(&mallory, "one", None), (&mallory, "two", None)]);
        let err = verify(&resigned, Some(&resigned[1].hash.clone()), anchors(&key, "p1")).unwrap_err();
        assert!(matches!(err, AuditError::NotPipelineKey { .. }), "{err}");

        // A key change without a policy change.
        let mixed = build(&[(&mallory, "one", None), (&pipeline, "two", None)]);
        let err = verify(&mixed, Some(&mixed[1].hash.clone()), anchors(&key, "p1")).unwrap_err();
        assert!(matches!(err, AuditError::WrongKey { seq: 2, .. }), "{err}");

        // An unsigned record.
        let mut plain = rows.clone();
        plain[1].record = "two".into();
        plain[1].hash = chain(&plain[1].prev, &plain[1].record);
        assert_eq!(
            verify(&plain, Some(&plain[1].hash.clone()), anchors(&key, "p1")),
            Err(AuditError::Unsigned { seq: 2 })
        );
    }

    #[test]
    fn keys_and_policies_change_only_at_a_handoff() {
        let old = signer(1, "p1");
        let new = signer(3, "p2");
        let handoff = Handoff { policy: "p2".into(), key: new.public_hex() };
        let rows = build(&[(&old, "one", None), (&old, "change", Some(handoff)), (&new, "three", None)]);
        let new_key = new.public_hex();
        verify(&rows, Some(&rows[2].hash.clone()), anchors(&new_key, "p2")).unwrap();
        // Ending at the handoff already points at the new policy and key.
        verify(&rows[..2], Some(&rows[1].hash.clone()), anchors(&new_key, "p2")).unwrap();
        let err = verify(&rows, Some(&rows[2].hash.clone()), anchors(&new_key, "p1")).unwrap_err();
        assert!(matches!(err, AuditError::PolicyMismatch { .. }), "{err}");
        let err = verify(&rows, Some(&rows[2].hash.clone()), Anchors { policy: None, ..anchors(&new_key, "p2") })
            .unwrap_err();
        assert!(matches!(err, AuditError::PolicyMismatch { expected: None, .. }), "{err}");
    }

    #[test]
    fn an_external_head_detects_truncation_and_counts_what_follows() {
        let pipeline = signer(1, "p1");
        let key = pipeline.public_hex();
        let rows = build(&[(&pipeline, "one", None), (&pipeline, "two", None), (&pipeline, "three", None)]);
        let published = rows[2].hash.clone();
        let at = |head| Anchors { head: Some(head), ..anchors(&key, "p1") };
        assert_eq!(verify(&rows, Some(&published), at(&published)).unwrap().after_head, Some(0));
        assert_eq!(verify(&rows, Some(&published), at(&rows[0].hash)).unwrap().after_head, Some(2));
        // The newest record removed and the head rewound: only the published head sees it.
        let cut = &rows[..2];
        let rewound = cut[1].hash.clone();
        verify(cut, Some(&rewound), anchors(&key, "p1")).unwrap();
        assert_eq!(verify(cut, Some(&rewound), at(&published)), Err(AuditError::HeadNotFound(published.clone())));
    }
}
