//! ## Overview
//!
//! TLS for the PostgreSQL state backend, with libpq's `sslmode` meanings, over rustls.
//!
//! tokio-postgres negotiates TLS itself but only knows whether to try it (`disable`, `prefer`,
//! `require`); what is checked about the server's certificate is up to the connector. So this
//! module turns the libpq modes into two things: the tokio-postgres mode, and a rustls verifier:
//!
//! | `sslmode`     | TLS                | certificate chain                     | host name   |
//! |---------------|--------------------|---------------------------------------|-------------|
//! | `disable`     | never              | –                                     | –           |
//! | `prefer`      | if the server can  | not checked                           | not checked |
//! | `require`     | always             | checked only if `sslrootcert` is given | not checked |
//! | `verify-ca`   | always             | checked                               | not checked |
//! | `verify-full` | always             | checked                               | checked     |
//!
//! `require` with a root file checks the chain, as libpq's does. The chain is checked against `sslrootcert=PATH` (PEM) when given, else against Mozilla's
//! root set: a self-signed server certificate is refused unless its file is named. Even an
//! unchecked certificate must sign the handshake, so the session is encrypted to whoever holds
//! its key.
//!
//! rustls gets the aws-lc-rs provider explicitly, per connection, as the tree's other rustls
//! users (kube-rs, the AWS and Google SDKs) have it: a process-wide default is never relied on,
//! so a second provider turning up in the tree cannot leave rustls with two and none chosen.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_cert_signed_by_trust_anchor};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::state::StateError;

/// A CA file bigger than this is not a CA file.
const MAX_ROOT_CERT_BYTES: u64 = 1 << 20;

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(text: &str) -> Result<Self, StateError> {
        Ok(match text {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => {
                return Err(StateError::Url(format!(
                    "sslmode={other}: expected disable, prefer, require, verify-ca or verify-full"
                )));
            }
        })
    }

    /// Whether tokio-postgres should try TLS, and insist on it.
    pub fn negotiation(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Negotiate;
        match self {
            Self::Disable => Negotiate::Disable,
            Self::Prefer => Negotiate::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => Negotiate::Require,
        }
    }
}

/// What the server's certificate must satisfy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Only that it signs the handshake.
    Nothing,
    /// That it chains to a trusted root.
    Chain,
    /// That it chains to a trusted root and names the host connected to.
    ChainAndName,
}

/// The TLS settings of one state URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: SslMode,
    /// `sslrootcert=PATH`: the PEM file of the roots to trust.
    pub root_cert: Option<PathBuf>,
}

impl TlsSettings {
    fn check(&self) -> Check {
        match (self.mode, &self.root_cert) {
            (SslMode::Disable | SslMode::Prefer, _) | (SslMode::Require, None) => Check::Nothing,
            (SslMode::Require, Some(_)) | (SslMode::VerifyCa, _) => Check::Chain,
            (SslMode::VerifyFull, _) => Check::ChainAndName,
        }
    }

    /// The connector tokio-postgres hands each host's stream to.
    pub fn connector(&self) -> Result<MakeRustlsConnect, StateError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match self.check() {
            Check::Nothing => {
                Arc::new(NameBlind { chain_roots: None, algorithms: provider.signature_verification_algorithms })
            }
            Check::Chain => Arc::new(NameBlind {
                chain_roots: Some(Arc::new(self.roots()?)),
                algorithms: provider.signature_verification_algorithms,
            }),
            Check::ChainAndName => {
                WebPkiServerVerifier::builder_with_provider(Arc::new(self.roots()?), provider.clone())
                    .build()
                    .map_err(|e| StateError::Url(format!("sslrootcert: {e}")))?
            }
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| StateError::Url(format!("TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(MakeRustlsConnect::new(config))
    }

    fn roots(&self) -> Result<RootCertStore, StateError> {
        let Some(path) = &self.root_cert else {
            return Ok(RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() });
        };
        let mut roots = RootCertStore::empty();
        let certs = read_pem_certificates(path)?;
        let (added, _unusable) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(root_cert_error(path, "holds no usable certificate"));
        }
        Ok(roots)
    }
}

fn root_cert_error(path: &Path, what: impl std::fmt::Display) -> StateError {
    StateError::Url(format!("sslrootcert={}: {what}", path.display()))
}

/// The certificates of a PEM file, read with a size cap (a FIFO or `/dev/zero` is refused).
fn read_pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, StateError> {
    let file = std::fs::File::open(path).map_err(|e| root_cert_error(path, e))?;
    let meta = file.metadata().map_err(|e| root_cert_error(path, e))?;
    if !meta.is_file() {
        return Err(root_cert_error(path, "is not a regular file"));
    }
    let mut pem = Vec::new();
    file.take(MAX_ROOT_CERT_BYTES + 1).read_to_end(&mut pem).map_err(|e| root_cert_error(path, e))?;
    if pem.len() as u64 > MAX_ROOT_CERT_BYTES {
        return Err(root_cert_error(path, format!("is larger than {MAX_ROOT_CERT_BYTES} bytes")));
    }
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| root_cert_error(path, format!("is not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(root_cert_error(path, "holds no certificate"));
    }
    Ok(certs)
}

/// Every mode but `verify-full`: the host name is not checked; the chain is when there are
/// roots to check it against (`verify-ca`, `require` with a root file), and otherwise any
/// certificate that signs the handshake is taken (`prefer`, `require`).
#[derive(Debug)]
struct NameBlind {
    chain_roots: Option<Arc<RootCertStore>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for NameBlind {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.chain_roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(&cert, roots, intermediates, now, self.algorithms.all)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_libpq_mode_parses_and_anything_else_is_named_in_the_error() {
        for (text, mode) in [
            ("disable", SslMode::Disable),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
            ("verify-ca", SslMode::VerifyCa),
            ("verify-full", SslMode::VerifyFull),
        ] {
            assert_eq!(SslMode::parse(text).unwrap(), mode);
        }
        let err = SslMode::parse("allow-anything").unwrap_err().to_string();
        assert!(err.contains("sslmode=allow-anything") && err.contains("verify-full"), "{err}");
    }

    #[test]
    fn require_checks_the_chain_only_when_a_root_file_is_given() {
        let settings = |mode, root: Option<&str>| TlsSettings { mode, root_cert: root.map(PathBuf::from) };
        assert_eq!(settings(SslMode::Require, None).check(), Check::Nothing);
        assert_eq!(settings(SslMode::Require, Some("/ca.pem")).check(), Check::Chain);
        assert_eq!(settings(SslMode::VerifyCa, None).check(), Check::Chain);
        assert_eq!(settings(SslMode::VerifyFull, None).check(), Check::ChainAndName);
        assert_eq!(settings(SslMode::Prefer, Some("/ca.pem")).check(), Check::Nothing);
    }

    #[test]
    fn a_root_file_that_is_missing_not_pem_or_not_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "hello").unwrap();
        for path in [missing, garbage, dir.path().to_path_buf(), PathBuf::from("/dev/zero")] {
            let settings = TlsSettings { mode: SslMode::VerifyFull, root_cert: Some(path.clone()) };
            let err = settings.connector().err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(&format!("sslrootcert={}", path.display())), "{path:?}: {err}");
        }
    }
}
