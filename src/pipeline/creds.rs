//! Write credentials, sealed with age to the pipeline's identity.
//!
//! `tessera creds seal` encrypts a small YAML file of credentials to the pipeline's age
//! recipient. Only `tessera pipeline apply`, holding the identity ([`PipelineIdentity`]),
//! decrypts it, in memory, into `secrecy` types that are zeroed on drop; nothing here implements
//! `Display`, `Serialize` or a revealing `Debug`. In the pipeline these are the only cloud
//! credentials: a backend that reads a section gets it from here or is not used at all.
//!
//! The file has one section per backend, named by the backend (`aws` for eks, `azure` for aks,
//! `gcp` for gke), each checked against what its backend declares. Unknown sections and keys are
//! refused, so a typo never silently falls back to ambient credentials.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use age::x25519::Recipient;
use secrecy::SecretString;
use tessera_provider_api::{Backend, CredentialSection, Credentials};
use zeroize::Zeroizing;

pub use super::identity::PipelineIdentity;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CredsError {
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

/// Decrypted write credentials, one section per backend. Zeroed when dropped.
#[derive(Debug)]
pub struct WriteCredentials {
    pub sections: BTreeMap<String, Credentials>,
}

/// Encrypts the plaintext credentials file to `recipient` (ASCII-armoured not needed: binary).
pub fn seal(plaintext: &[u8], recipient: &str, backends: &[Arc<dyn Backend>]) -> Result<Vec<u8>, CredsError> {
    let r = Recipient::from_str(recipient.trim()).map_err(|_| CredsError::BadRecipient(recipient.into()))?;
    // Refuse to seal something the pipeline could not parse later.
    parse(plaintext, backends)?;
    age::encrypt(&r, plaintext).map_err(|e| CredsError::Seal(e.to_string()))
}

pub fn unseal(
    sealed: &[u8],
    identity: &PipelineIdentity,
    backends: &[Arc<dyn Backend>],
) -> Result<WriteCredentials, CredsError> {
    let plain = Zeroizing::new(age::decrypt(identity.age(), sealed).map_err(|e| CredsError::Unseal(e.to_string()))?);
    parse(&plain, backends)
}

fn parse(plain: &[u8], backends: &[Arc<dyn Backend>]) -> Result<WriteCredentials, CredsError> {
    let known: Vec<CredentialSection> = backends.iter().filter_map(|b| b.credentials()).collect();
    let names: Vec<&str> = known.iter().map(|s| s.name).collect();
    let text = std::str::from_utf8(plain).map_err(|_| CredsError::Malformed("not UTF-8".into()))?;
    // Parse errors would quote the input: keep only their position. Values go straight into
    // secrets, which zero themselves when dropped.
    let file: BTreeMap<String, BTreeMap<String, SecretString>> = serde_saphyr::from_str(text).map_err(|e| {
        let at = e.location().map(|l| format!("line {} column {}", l.line(), l.column())).unwrap_or_default();
        CredsError::Malformed(format!(
            "expected sections of keys and string values, such as `aws: {{accessKeyId, secretAccessKey}}` ({at})"
        ))
    })?;
    if file.is_empty() {
        return Err(CredsError::Malformed(format!(
            "no credentials: expected one of the sections {}",
            names.join(", ")
        )));
    }
    let mut sections = BTreeMap::new();
    for (name, keys) in file {
        let Some(section) = known.iter().find(|s| s.name == name) else {
            return Err(CredsError::Malformed(format!(
                "unknown section `{name}`: this build reads {}",
                names.join(", ")
            )));
        };
        let mut creds = Credentials::default();
        for (key, value) in keys {
            creds.insert(key, value);
        }
        section.check(&creds).map_err(CredsError::Malformed)?;
        sections.insert(name, creds);
    }
    Ok(WriteCredentials { sections })
}

#[cfg(test)]
mod tests {
    use super::*;

    use secrecy::ExposeSecret;

    fn backends() -> Vec<Arc<dyn Backend>> {
        crate::backends::all()
    }

    #[test]
    fn seals_to_a_recipient_and_opens_only_with_its_identity() {
        let (secret, recipient, _) = PipelineIdentity::generate();
        let sealed =
            seal(b"aws: { accessKeyId: AKIA1, secretAccessKey: s3cr3t-value }\n", &recipient, &backends()).unwrap();
        assert!(!sealed.windows(12).any(|w| w == b"s3cr3t-value"), "ciphertext must not contain the secret");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id");
        std::fs::write(&path, secret.expose_secret()).unwrap();
        let id = PipelineIdentity::from_env_or_file(Some(&path)).unwrap();
        let creds = unseal(&sealed, &id, &backends()).unwrap();
        assert_eq!(creds.sections["aws"].expose("secretAccessKey"), Some("s3cr3t-value"));
        assert!(!format!("{creds:?}").contains("s3cr3t"));

        let (other, _, _) = PipelineIdentity::generate();
        std::fs::write(&path, other.expose_secret()).unwrap();
        let wrong = PipelineIdentity::from_env_or_file(Some(&path)).unwrap();
        assert!(matches!(unseal(&sealed, &wrong, &backends()), Err(CredsError::Unseal(_))));
        assert!(matches!(seal(b"not: creds", &recipient, &backends()), Err(CredsError::Malformed(_))));
    }

    #[test]
    fn each_backend_has_its_section_and_nothing_else_is_accepted() {
        let b = backends();
        let ok: &[&[u8]] = &[
            b"aws: { accessKeyId: AKIA1, secretAccessKey: s3cr3t }\n",
            b"azure: { tenantId: t, clientId: c, clientSecret: s3cr3t }\n",
            b"azure: { tenantId: t, clientId: c, federatedTokenFile: /var/run/token }\n",
            b"gcp: { serviceAccountKey: '{\"type\": \"service_account\"}' }\n",
            b"gcp: { workloadIdentityConfig: '{\"type\": \"external_account\"}' }\n",
            b"aws: { accessKeyId: A, secretAccessKey: s }\nazure: { tenantId: t, clientId: c, clientSecret: s }\n",
        ];
        for text in ok {
            let creds = parse(text, &b).unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(text)));
            assert!(!format!("{creds:?}").contains("s3cr3t"), "Debug never shows a secret");
        }
        let refused: &[(&[u8], &str)] = &[
            (b"oracle: { key: s3cr3t }\n", "unknown section `oracle`"),
            (b"aws: { accessKeyId: A }\n", "needs `secretAccessKey`"),
            (b"azure: { tenantId: t, clientId: c, clientSecret: s, federatedTokenFile: f }\n", "exactly one of"),
            (b"gcp: { }\n", "exactly one of"),
            (b"gcp: { serviceAccountKey: k, region: x }\n", "no key `region`"),
            (b"{}\n", "no credentials"),
        ];
        for (text, why) in refused {
            let err = parse(text, &b).unwrap_err().to_string();
            assert!(err.contains(why), "{}: {err}", String::from_utf8_lossy(text));
            assert!(!err.contains("s3cr3t"), "errors never quote a secret: {err}");
        }
    }
}
