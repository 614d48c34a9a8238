//! Plan files: the plan plus a SHA-256 digest of its canonical JSON.
//!
//! The digest is what approvers sign, and loading recomputes it, so a plan edited by hand (or
//! truncated in transit) is refused rather than applied.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{PLAN_FORMAT, Plan};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanFile {
    pub digest: String,
    pub plan: Plan,
    /// Signatures over `digest`, added by `tessera approve`. Not part of the digest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approval>,
}

/// One approver's ed25519 signature over a plan digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub approver: String,
    /// Hex public key; it must be the approver's key in `policy.yaml` to count.
    pub key: String,
    pub signature: String,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PlanFileError {
    #[error("cannot read plan file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a Tessera plan file: {reason}")]
    #[diagnostic(code(tessera::plan::format), help("make one with `tessera plan SPEC -o PLAN`"))]
    Malformed { path: PathBuf, reason: String },
    #[error("{path} was modified after it was made (digest {found} does not match its content {computed})")]
    #[diagnostic(code(tessera::plan::tampered), help("make a fresh plan; never edit plan files"))]
    Tampered { path: PathBuf, found: String, computed: String },
}

/// The digest of a plan: SHA-256 over its JSON, whose field order is fixed by the types and whose
/// maps are ordered, so the same plan always hashes the same.
pub fn digest(plan: &Plan) -> String {
    hex::encode(Sha256::digest(serde_json::to_vec(plan).unwrap_or_default()))
}

impl PlanFile {
    pub fn new(plan: Plan) -> Self {
        Self { digest: digest(&plan), plan, approvals: Vec::new() }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Writes atomically: a crash leaves the old file or the new one, never half of one.
    pub fn save(&self, path: &Path) -> Result<(), PlanFileError> {
        let io = |source| PlanFileError::Io { path: path.to_path_buf(), source };
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, self.to_json()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    pub fn load(path: &Path) -> Result<Self, PlanFileError> {
        let text = crate::bounded::read_to_string(path, crate::bounded::PLAN)
            .map_err(|source| PlanFileError::Io { path: path.to_path_buf(), source })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, PlanFileError> {
        let malformed = |reason: String| PlanFileError::Malformed { path: path.to_path_buf(), reason };
        let file: PlanFile = serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?;
        if file.plan.format != PLAN_FORMAT {
            return Err(malformed(format!(
                "format `{}`, expected `{PLAN_FORMAT}`: it was made by another release of Tessera; run `tessera plan` again",
                file.plan.format
            )));
        }
        let computed = digest(&file.plan);
        if computed != file.digest {
            return Err(PlanFileError::Tampered { path: path.to_path_buf(), found: file.digest, computed });
        }
        let mut file = file;
        // The file holds each resource's type, schema version and values; what the engine acts
        // on (policies, replacement rules, outputs) comes from this build's schemas, so no file
        // can loosen them.
        for spec in file.plan.actions.iter_mut().filter_map(|a| a.desired.as_mut()) {
            crate::backends::restore(spec).map_err(|e| malformed(e.to_string()))?;
        }
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn plan() -> Plan {
        Plan {
            format: PLAN_FORMAT.into(),
            fleet: "f".into(),
            spec_path: "specs/f.yaml".into(),
            spec_digest: "abc".into(),
            lineage: "l".into(),
            serial: 3,
            destroy: false,
            actions: vec![],
            drift: vec![],
            unchanged: 2,
            unknown: vec![],
            notes: vec![],
            rollout: None,
        }
    }

    #[test]
    fn round_trips_and_detects_tampering() {
        let file = PlanFile::new(plan());
        let json = file.to_json();
        assert_eq!(PlanFile::parse(Path::new("p"), &json).unwrap(), file);
        let tampered = json.replace("\"serial\": 3", "\"serial\": 4");
        assert_ne!(tampered, json);
        assert!(matches!(PlanFile::parse(Path::new("p"), &tampered), Err(PlanFileError::Tampered { .. })));
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics(text in ".{0,400}") {
            let _ = PlanFile::parse(Path::new("p"), &text);
        }

        #[test]
        fn any_single_byte_change_is_refused(pos in 0usize..10_000, byte in 32u8..127) {
            let json = PlanFile::new(plan()).to_json();
            let pos = pos % json.len();
            let mut bytes = json.clone().into_bytes();
            prop_assume!(bytes[pos] != byte);
            bytes[pos] = byte;
            let text = String::from_utf8(bytes).unwrap();
            // Either it no longer parses, or it parses to the very same plan (whitespace).
            if let Ok(f) = PlanFile::parse(Path::new("p"), &text) {
                prop_assert_eq!(f, PlanFile::new(plan()));
            }
        }
    }
}
