//! ## Overview
//!
//! The policy bound to state. A `policy.yaml` in the working directory is a suggestion anyone can
//! remove (`cd elsewhere`, `--policy /nonexistent.yaml`); the state is what every command shares.
//! So the first apply under a policy records the policy's text and digest in state, and from then
//! on every command on that state, wherever it runs, enforces the recorded policy:
//! - the policy file must be there and be exactly the recorded one, or the command is refused
//!   with an error that names the recorded policy;
//! - the rules enforced are the recorded ones (the same, since the digests match);
//! - the policy changes only through an approved policy change ([`super::change`]), applied by
//!   the pipeline.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::policy::{Policy, PolicyError};
use crate::state::{BoundPolicy, StateError, StateStore};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum BindError {
    #[error(
        "this state is bound to policy {} (recorded from {recorded} on {at}), but {} does not exist",
        short(digest),
        path.display()
    )]
    #[diagnostic(
        code(tessera::policy::missing),
        help(
            "run from the repository that holds that policy, or pass --policy with its path; a state bound to a policy is never used without it"
        )
    )]
    Missing { path: PathBuf, recorded: String, digest: String, at: String },
    #[error(
        "this state is bound to policy {} (recorded from {recorded} on {at}), but {} is policy {}",
        short(digest),
        path.display(),
        short(found)
    )]
    #[diagnostic(
        code(tessera::policy::different),
        help(
            "use the recorded policy; to change it, make a policy change with `tessera policy plan NEW -o CHANGE`, have its lane approve it, and let the pipeline run `tessera pipeline apply CHANGE`"
        )
    )]
    Different { path: PathBuf, recorded: String, digest: String, found: String, at: String },
    #[error("the policy recorded in state is corrupt: {0}")]
    #[diagnostic(code(tessera::policy::corrupt_binding))]
    Corrupt(String),
    #[error("cannot read policy {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    State(#[from] StateError),
    #[error(
        "this state has {records} signed audit record(s) but no policy binding: the binding was removed outside Tessera"
    )]
    #[diagnostic(
        code(tessera::policy::binding_removed),
        help(
            "restore the state from a backup (its audit chain names the policy it ran under); nothing is written to a state whose rules were removed"
        )
    )]
    BindingRemoved { records: usize },
    #[error("the state's policy binding does not match its signed audit chain: {0}")]
    #[diagnostic(
        code(tessera::policy::binding_tampered),
        help(
            "the binding or the chain was changed outside an approved policy change; `tessera audit verify` shows the chain, and nothing is written until it holds"
        )
    )]
    Chain(#[from] crate::state::audit::AuditError),
}

/// The first 16 characters of a digest, for people. Digests come from files and state rows, so
/// this never slices inside a character.
pub fn short(digest: &str) -> &str {
    digest.char_indices().nth(16).map_or(digest, |(end, _)| &digest[..end])
}

fn when(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)).to_string()
}

/// The SHA-256 of a policy file's bytes, hex.
pub fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The policy a command runs under.
#[derive(Debug, Clone)]
pub struct Enforced {
    pub policy: Policy,
    pub digest: String,
    pub text: String,
    /// Whether state records it already; if not, the first apply binds it.
    pub bound: bool,
}

/// The recorded policy, checked against its digest and parsed.
pub fn parse_recorded(bound: &BoundPolicy) -> Result<Policy, BindError> {
    if digest(&bound.text) != bound.digest {
        return Err(BindError::Corrupt(format!("its text does not hash to its digest {}", bound.digest)));
    }
    Policy::parse(Path::new(&bound.source), &bound.text).map_err(|e| BindError::Corrupt(e.to_string()))
}

/// Reads the policy file: `None` if it does not exist.
pub fn read_file(path: &Path) -> Result<Option<String>, BindError> {
    match crate::bounded::read_to_string(path, crate::bounded::SMALL) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(BindError::Io { path: path.into(), source }),
    }
}

/// The policy in force for a command on `store`, with `path` the policy file it was given.
pub async fn resolve(store: &dyn StateStore, path: &Path) -> Result<Option<Enforced>, BindError> {
    let file = read_file(path)?;
    let Some(bound) = store.bound_policy().await? else {
        return match file {
            Some(text) => {
                let policy = Policy::parse(path, &text)?;
                Ok(Some(Enforced { policy, digest: digest(&text), text, bound: false }))
            }
            None => Ok(None),
        };
    };
    let policy = parse_recorded(&bound)?;
    let recorded = bound.source.clone();
    let at = when(bound.bound_at);
    match file {
        None => Err(BindError::Missing { path: path.into(), recorded, digest: bound.digest, at }),
        Some(text) if digest(&text) != bound.digest => {
            Err(BindError::Different { path: path.into(), recorded, digest: bound.digest, found: digest(&text), at })
        }
        Some(_) => Ok(Some(Enforced { policy, digest: bound.digest, text: bound.text, bound: true })),
    }
}

/// Checks the state's policy binding against its signed audit chain, before anything is written:
/// a state with audit records must be bound to the policy the chain ends under, and the binding
/// must hash to its text; with `head` (a head published outside the state, as `audit verify
/// --head` takes it) the chain must contain it. A state writer who swaps, edits or removes the
/// binding to lift the rules is refused here rather than found by a later `audit verify`.
pub async fn check_chain(store: &dyn StateStore, head: Option<&str>) -> Result<(), BindError> {
    let (rows, state_head) = store.audit_log().await?;
    let bound = store.bound_policy().await?;
    if rows.is_empty() && head.is_none() {
        return Ok(());
    }
    let (key, digest) = match &bound {
        Some(b) => {
            let policy = parse_recorded(b)?;
            (policy.pipeline.map(|p| p.audit_key.trim().to_string()), Some(b.digest.clone()))
        }
        None if !rows.is_empty() => return Err(BindError::BindingRemoved { records: rows.len() }),
        None => (None, None),
    };
    let anchors = crate::state::audit::Anchors { key: key.as_deref(), policy: digest.as_deref(), head };
    crate::state::audit::verify(&rows, state_head.as_deref(), anchors)?;
    Ok(())
}

/// Records `enforced` in state if nothing is recorded yet. Two first applies racing with
/// different policies: the second is refused. Callers check the chain first ([`check_chain`]).
pub async fn bind(store: &dyn StateStore, enforced: &Enforced, path: &Path) -> Result<(), BindError> {
    if enforced.bound {
        return Ok(());
    }
    let source = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string();
    let candidate = BoundPolicy {
        digest: enforced.digest.clone(),
        text: enforced.text.clone(),
        source,
        bound_at: crate::state::now_secs(),
    };
    let bound = store.bind_policy(&candidate).await?;
    if bound.digest != candidate.digest {
        return Err(BindError::Different {
            path: path.into(),
            recorded: bound.source,
            digest: bound.digest,
            found: candidate.digest,
            at: when(bound.bound_at),
        });
    }
    Ok(())
}
