//! The audit log: one record per pipeline apply, chained by SHA-256 so that a changed, removed
//! or reordered record is detected by `tessera audit verify`. The state layer owns the chain:
//! it appends records in the same fenced transaction as the run, so the hashing lives here and
//! the pipeline only says what a record holds.
//!
//! `hash(n) = sha256(hash(n-1) ‖ record(n))`, with `hash(0)` the genesis constant. State keeps
//! the head hash beside the chain, so removing the newest record is detected too.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::AuditRow;

pub const GENESIS: &str = "tessera-audit-genesis";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at: u64,
    pub plan_digest: String,
    pub fleet: String,
    pub approvers: Vec<String>,
    /// `address: outcome` for every step.
    pub outcomes: Vec<String>,
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
}

/// Checks the whole chain against the head hash state recorded.
pub fn verify(rows: &[AuditRow], head: Option<&str>) -> Result<usize, AuditError> {
    let mut prev = GENESIS.to_string();
    let mut last_seq = 0;
    for row in rows {
        if row.prev != prev || row.seq != last_seq + 1 {
            return Err(AuditError::Broken { seq: row.seq, prev: last_seq });
        }
        if chain(&row.prev, &row.record) != row.hash {
            return Err(AuditError::Changed { seq: row.seq });
        }
        prev = row.hash.clone();
        last_seq = row.seq;
    }
    let end = if rows.is_empty() { None } else { Some(prev.as_str()) };
    if head != end {
        return Err(AuditError::Truncated {
            head: head.unwrap_or("(none)").into(),
            end: end.unwrap_or("(none)").into(),
        });
    }
    Ok(rows.len())
}
