//! ## Overview
//!
//! The pipeline's identity: an age X25519 identity that exists only in the pipeline's secret
//! store. It does three things:
//! - it opens the sealed write credentials ([`super::creds`]);
//! - it proves that the run is the pipeline's: `policy.yaml` pins the recipient, and
//!   [`PipelineIdentity::prove`] decrypts a fresh challenge sealed to that recipient, so another
//!   identity (`tessera creds identity --out other.key`) is refused;
//! - it yields the audit signing key ([`PipelineIdentity::audit_key`]), derived from the
//!   identity's secret, whose public half the policy also pins (`pipeline.auditKey`). Deriving it
//!   means there is one secret to store and rotate, and nobody without that secret can sign.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::x25519::{Identity, Recipient};
use ed25519_dalek::SigningKey;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Domain separation for the audit key: the same secret never yields this key for anything else.
const AUDIT_KEY_CONTEXT: &[u8] = b"tessera pipeline audit signing key v1\0";

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum IdentityError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the pipeline identity is missing")]
    #[diagnostic(
        code(tessera::pipeline::no_identity),
        help(
            "`tessera pipeline apply` runs only in the pipeline, with its age identity in TESSERA_PIPELINE_IDENTITY or --identity-file"
        )
    )]
    NoIdentity,
    #[error("the pipeline identity is not a valid age identity")]
    #[diagnostic(code(tessera::pipeline::bad_identity))]
    BadIdentity,
    #[error("this identity is not the pipeline's: it cannot open a challenge sealed to {recipient}")]
    #[diagnostic(
        code(tessera::pipeline::not_the_pipeline),
        help("only the identity whose recipient `policy.yaml` names under `pipeline.recipient` may apply")
    )]
    NotThePipeline { recipient: String },
    #[error("the identity's audit key is {derived}, but the policy pins {pinned}")]
    #[diagnostic(
        code(tessera::pipeline::audit_key),
        help("`tessera creds identity` printed both the recipient and the audit key; put both in `pipeline:`")
    )]
    WrongAuditKey { derived: String, pinned: String },
    #[error("`{0}` is not a valid age recipient (age1…)")]
    BadRecipient(String),
    #[error("no system randomness: {0}")]
    Random(String),
    #[error("sealing the challenge failed: {0}")]
    Seal(String),
}

/// The pipeline's identity, read from the environment or a file present only in the pipeline.
pub struct PipelineIdentity(Identity);

impl PipelineIdentity {
    pub fn from_env_or_file(file: Option<&Path>) -> Result<Self, IdentityError> {
        let text = match (std::env::var("TESSERA_PIPELINE_IDENTITY"), file) {
            (_, Some(path)) => Zeroizing::new(
                crate::bounded::read_to_string(path, crate::bounded::SMALL)
                    .map_err(|source| IdentityError::Io { path: path.into(), source })?,
            ),
            (Ok(v), None) if !v.trim().is_empty() => Zeroizing::new(v),
            _ => return Err(IdentityError::NoIdentity),
        };
        let line =
            text.lines().map(str::trim).find(|l| l.starts_with("AGE-SECRET-KEY-")).ok_or(IdentityError::BadIdentity)?;
        Identity::from_str(line).map(Self).map_err(|_| IdentityError::BadIdentity)
    }

    /// A new identity: (secret, for the pipeline's secret store; recipient, for sealing; audit
    /// key, for the policy).
    pub fn generate() -> (SecretString, String, String) {
        let id = Self(Identity::generate());
        let audit = id.audit_public_hex();
        (id.0.to_string(), id.0.to_public().to_string(), audit)
    }

    pub(crate) fn age(&self) -> &Identity {
        &self.0
    }

    /// Proves that this is the identity of `recipient`: a random challenge sealed to the
    /// recipient must come back out. (Comparing public keys would say the same for X25519; the
    /// challenge is what any age recipient type would need, and what an auditor can read.)
    pub fn prove(&self, recipient: &str) -> Result<(), IdentityError> {
        let pinned =
            Recipient::from_str(recipient.trim()).map_err(|_| IdentityError::BadRecipient(recipient.into()))?;
        let mut challenge = Zeroizing::new([0u8; 32]);
        getrandom::fill(challenge.as_mut()).map_err(|e| IdentityError::Random(e.to_string()))?;
        let sealed = age::encrypt(&pinned, challenge.as_ref()).map_err(|e| IdentityError::Seal(e.to_string()))?;
        match age::decrypt(&self.0, &sealed) {
            Ok(opened) if opened.as_slice() == &challenge[..] => Ok(()),
            _ => Err(IdentityError::NotThePipeline { recipient: recipient.trim().to_string() }),
        }
    }

    /// The key that signs audit records: SHA-256 over a context string and the identity's secret
    /// (32 uniformly random bytes, so one hash is a sound key derivation).
    pub fn audit_key(&self) -> SigningKey {
        let secret = self.0.to_string();
        let mut h = Sha256::new();
        h.update(AUDIT_KEY_CONTEXT);
        h.update(secret.expose_secret().as_bytes());
        let seed = Zeroizing::new(<[u8; 32]>::from(h.finalize()));
        SigningKey::from_bytes(&seed)
    }

    pub fn audit_public_hex(&self) -> String {
        hex::encode(self.audit_key().verifying_key().to_bytes())
    }

    /// The audit key, checked against the one the policy pins.
    pub fn pinned_audit_key(&self, pinned: &str) -> Result<SigningKey, IdentityError> {
        let key = self.audit_key();
        let derived = hex::encode(key.verifying_key().to_bytes());
        if derived != pinned.trim() {
            return Err(IdentityError::WrongAuditKey { derived, pinned: pinned.trim().to_string() });
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> (PipelineIdentity, String, String) {
        let (secret, recipient, audit) = PipelineIdentity::generate();
        (PipelineIdentity(Identity::from_str(secret.expose_secret()).unwrap()), recipient, audit)
    }

    #[test]
    fn only_the_pinned_identity_passes_the_challenge() {
        let (pipeline, recipient, audit) = identity();
        pipeline.prove(&recipient).unwrap();
        let (other, other_recipient, _) = identity();
        assert!(matches!(other.prove(&recipient), Err(IdentityError::NotThePipeline { .. })));
        assert!(matches!(pipeline.prove(&other_recipient), Err(IdentityError::NotThePipeline { .. })));
        assert!(matches!(pipeline.prove("age1bogus"), Err(IdentityError::BadRecipient(_))));

        assert_eq!(pipeline.audit_public_hex(), audit, "generate prints the key the identity derives");
        pipeline.pinned_audit_key(&audit).unwrap();
        assert!(matches!(other.pinned_audit_key(&audit), Err(IdentityError::WrongAuditKey { .. })));
        assert_ne!(other.audit_public_hex(), audit);
    }
}
