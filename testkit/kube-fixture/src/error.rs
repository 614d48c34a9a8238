//! Errors of the fixture's own machinery (not the Kubernetes `Status` answers it serves).
//!
//! ## Overview
//! Starting the fixture fails loudly when something the validation needs is missing
//! (`kubernetes-validate`, the shared CRDs), so that a test can never pass by skipping checks.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error(
        "`{tool}` is not runnable ({reason}); install it with `python3 -m pip install kubernetes-validate` (scripts/test does)"
    )]
    ValidatorMissing { tool: String, reason: String },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not valid YAML: {message}")]
    Yaml { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("the fixture server could not start: {0}")]
    Start(String),
    #[error("no {0} is served by the fixture")]
    UnknownKind(String),
    #[error("{0} not found")]
    NotFound(String),
}
