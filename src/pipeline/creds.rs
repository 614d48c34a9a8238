//! Write credentials, sealed with age to the pipeline's identity.
//!
//! `tessera creds seal` encrypts a small YAML file of credentials to the pipeline's age
//! recipient. Only `tessera pipeline apply`, holding the identity (`TESSERA_PIPELINE_IDENTITY`
//! or `--identity-file`), decrypts it, in memory, into `secrecy` types that are zeroed on drop;
//! nothing here implements `Display`, `Serialize` or a revealing `Debug`.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::x25519::{Identity, Recipient};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CredsError {
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
    #[error("`{0}` is not a valid age recipient (age1…)")]
    BadRecipient(String),
    #[error("sealing failed: {0}")]
    Seal(String),
    #[error("the sealed credentials cannot be opened with this identity: {0}")]
    #[diagnostic(
        code(tessera::pipeline::unseal),
        help("seal them to the pipeline's recipient with `tessera creds seal --recipient age1…`")
    )]
    Unseal(String),
    #[error("the credentials file is malformed: {0}")]
    Malformed(String),
}

/// The pipeline's identity, read from the environment or a file present only in the pipeline.
pub struct PipelineIdentity(Identity);

impl PipelineIdentity {
    pub fn from_env_or_file(file: Option<&Path>) -> Result<Self, CredsError> {
        let text = match (std::env::var("TESSERA_PIPELINE_IDENTITY"), file) {
            (_, Some(path)) => Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| CredsError::Io { path: path.into(), source })?,
            ),
            (Ok(v), None) if !v.trim().is_empty() => Zeroizing::new(v),
            _ => return Err(CredsError::NoIdentity),
        };
        let line =
            text.lines().map(str::trim).find(|l| l.starts_with("AGE-SECRET-KEY-")).ok_or(CredsError::BadIdentity)?;
        Identity::from_str(line).map(Self).map_err(|_| CredsError::BadIdentity)
    }

    /// A new identity: (secret, for the pipeline's secret store; recipient, for sealing).
    pub fn generate() -> (SecretString, String) {
        let id = Identity::generate();
        (id.to_string(), id.to_public().to_string())
    }
}

/// Decrypted write credentials. Zeroed when dropped.
pub struct WriteCredentials {
    pub aws_access_key_id: SecretString,
    pub aws_secret_access_key: SecretString,
}

impl std::fmt::Debug for WriteCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteCredentials { .. }")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CredsFile {
    aws: AwsCreds,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AwsCreds {
    access_key_id: String,
    secret_access_key: String,
}

/// Encrypts the plaintext credentials file to `recipient` (ASCII-armoured not needed: binary).
pub fn seal(plaintext: &[u8], recipient: &str) -> Result<Vec<u8>, CredsError> {
    let r = Recipient::from_str(recipient.trim()).map_err(|_| CredsError::BadRecipient(recipient.into()))?;
    // Refuse to seal something the pipeline could not parse later.
    parse(plaintext)?;
    age::encrypt(&r, plaintext).map_err(|e| CredsError::Seal(e.to_string()))
}

pub fn unseal(sealed: &[u8], identity: &PipelineIdentity) -> Result<WriteCredentials, CredsError> {
    let plain = Zeroizing::new(age::decrypt(&identity.0, sealed).map_err(|e| CredsError::Unseal(e.to_string()))?);
    parse(&plain)
}

fn parse(plain: &[u8]) -> Result<WriteCredentials, CredsError> {
    let text = std::str::from_utf8(plain).map_err(|_| CredsError::Malformed("not UTF-8".into()))?;
    // Parse errors would quote the input: keep only their position.
    let file: CredsFile = serde_saphyr::from_str(text).map_err(|e| {
        let at = e.location().map(|l| format!("line {} column {}", l.line(), l.column())).unwrap_or_default();
        CredsError::Malformed(format!("expected `aws: {{accessKeyId, secretAccessKey}}` ({at})"))
    })?;
    let CredsFile { aws } = file;
    Ok(WriteCredentials {
        aws_access_key_id: SecretString::from(aws.access_key_id),
        aws_secret_access_key: SecretString::from(aws.secret_access_key),
    })
}

impl WriteCredentials {
    /// The AWS key pair, for the EKS backend's client. The caller must not keep it.
    pub fn aws(&self) -> (String, String) {
        (self.aws_access_key_id.expose_secret().to_string(), self.aws_secret_access_key.expose_secret().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_to_a_recipient_and_opens_only_with_its_identity() {
        let (secret, recipient) = PipelineIdentity::generate();
        let sealed = seal(b"aws: { accessKeyId: AKIA1, secretAccessKey: s3cr3t-value }\n", &recipient).unwrap();
        assert!(!sealed.windows(12).any(|w| w == b"s3cr3t-value"), "ciphertext must not contain the secret");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id");
        std::fs::write(&path, secret.expose_secret()).unwrap();
        let id = PipelineIdentity::from_env_or_file(Some(&path)).unwrap();
        let creds = unseal(&sealed, &id).unwrap();
        assert_eq!(creds.aws().1, "s3cr3t-value");
        assert!(!format!("{creds:?}").contains("s3cr3t"));

        let (other, _) = PipelineIdentity::generate();
        std::fs::write(&path, other.expose_secret()).unwrap();
        let wrong = PipelineIdentity::from_env_or_file(Some(&path)).unwrap();
        assert!(matches!(unseal(&sealed, &wrong), Err(CredsError::Unseal(_))));
        assert!(matches!(seal(b"not: creds", &recipient), Err(CredsError::Malformed(_))));
    }
}
