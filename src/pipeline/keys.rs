//! Approver keys: ed25519. A private key file holds `TESSERA-APPROVER-SECRET-KEY-` and the 32-byte
//! seed in hex; the public key is shared as bare hex (`NAME.pub`, and in `policy.yaml`). The prefix
//! is what tells them apart: both are 32 bytes, so a public key given as `--key` would otherwise
//! be taken for a seed and sign with a key nobody has. Approvers sign the plan digest.

use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use zeroize::Zeroizing;

/// What begins a private key file.
pub const SECRET_PREFIX: &str = "TESSERA-APPROVER-SECRET-KEY-";

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum KeyError {
    #[error("cannot read key {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{what} is not a valid ed25519 key: {reason}")]
    #[diagnostic(code(tessera::keys::invalid), help("make a key pair with `tessera keygen --out NAME`"))]
    Invalid { what: String, reason: String },
    #[error("{0} is not a private key: it holds a public key (64 hex digits, as in NAME.pub and policy.yaml)")]
    #[diagnostic(
        code(tessera::keys::public_not_private),
        help("sign with the private key file `tessera keygen --out NAME` wrote (NAME, not NAME.pub)")
    )]
    NotPrivate(String),
    #[error("no system randomness: {0}")]
    Random(String),
}

/// A new key pair: (private key file text, public key hex).
pub fn generate() -> Result<(Zeroizing<String>, String), KeyError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(|e| KeyError::Random(e.to_string()))?;
    let key = SigningKey::from_bytes(&seed);
    let seed_hex = Zeroizing::new(hex::encode(&seed[..]));
    Ok((Zeroizing::new(format!("{SECRET_PREFIX}{}\n", seed_hex.as_str())), hex::encode(key.verifying_key().to_bytes())))
}

pub fn load_signing(path: &Path) -> Result<SigningKey, KeyError> {
    let text = Zeroizing::new(
        crate::bounded::read_to_string(path, crate::bounded::SMALL)
            .map_err(|source| KeyError::Io { path: path.into(), source })?,
    );
    let invalid = |reason: &str| KeyError::Invalid { what: path.display().to_string(), reason: reason.into() };
    let Some(seed_hex) = text.trim().strip_prefix(SECRET_PREFIX) else {
        if parse_public(&text).is_ok() {
            return Err(KeyError::NotPrivate(path.display().to_string()));
        }
        return Err(invalid(&format!("a private key file begins with {SECRET_PREFIX}")));
    };
    let bytes = Zeroizing::new(hex::decode(seed_hex).map_err(|_| invalid("not hex"))?);
    let seed: &[u8; 32] = bytes.as_slice().try_into().map_err(|_| invalid("not 32 bytes"))?;
    Ok(SigningKey::from_bytes(seed))
}

pub fn parse_public(hex_key: &str) -> Result<VerifyingKey, KeyError> {
    let invalid = |reason: &str| KeyError::Invalid { what: format!("public key `{hex_key}`"), reason: reason.into() };
    let bytes = hex::decode(hex_key.trim()).map_err(|_| invalid("not hex"))?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| invalid("not 32 bytes"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| invalid(&e.to_string()))
}

pub fn public_hex(key: &SigningKey) -> String {
    hex::encode(key.verifying_key().to_bytes())
}

/// Signs a plan digest (its hex text, as bytes).
pub fn sign(key: &SigningKey, digest: &str) -> String {
    hex::encode(key.sign(digest.as_bytes()).to_bytes())
}

pub fn verify(public: &VerifyingKey, digest: &str, signature_hex: &str) -> bool {
    let Ok(bytes) = hex::decode(signature_hex) else { return false };
    let Ok(bytes): Result<[u8; 64], _> = bytes.try_into() else { return false };
    public.verify(digest.as_bytes(), &Signature::from_bytes(&bytes)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_for_their_key_and_digest() {
        let (seed, public) = generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, seed.as_str()).unwrap();
        let key = load_signing(&path).unwrap();
        assert_eq!(public_hex(&key), public);
        // The public half, given where the private key belongs, is refused rather than used as a seed.
        std::fs::write(dir.path().join("k.pub"), format!("{public}\n")).unwrap();
        assert!(matches!(load_signing(&dir.path().join("k.pub")), Err(KeyError::NotPrivate(_))));
        let sig = sign(&key, "abc123");
        let pk = parse_public(&public).unwrap();
        assert!(verify(&pk, "abc123", &sig));
        assert!(!verify(&pk, "abc124", &sig));
        let (_, other) = generate().unwrap();
        assert!(!verify(&parse_public(&other).unwrap(), "abc123", &sig));
        assert!(!verify(&pk, "abc123", "zz"));
    }
}
