//! ## Overview
//!
//! Reads a PostgreSQL state URL into what a connection needs.
//!
//! `postgres://user@host:port/db?…` is tokio-postgres's URL, plus three query parameters that
//! Tessera takes out before handing the rest over:
//! - `schema=NAME`: this state lives in its own schema, so one database can hold many states;
//! - `sslmode=…`: libpq's five modes (tokio-postgres knows three), `prefer` when absent;
//! - `sslrootcert=PATH`: the roots to check the server's certificate against.
//!
//! The query is read as libpq and tokio-postgres read it (`&`-separated `key=value`, percent
//! escapes decoded, `+` kept as it is); the parameters left are passed on exactly as they came,
//! for tokio-postgres to decode.

use std::path::PathBuf;
use std::str::FromStr;

use percent_encoding::percent_decode_str;

use super::tls::{SslMode, TlsSettings};
use crate::state::StateError;

#[derive(Debug, Clone)]
pub struct Target {
    pub config: tokio_postgres::Config,
    pub tls: TlsSettings,
    pub schema: Option<String>,
}

impl Target {
    pub fn parse(url: &str) -> Result<Self, StateError> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut schema = None;
        let mut mode = SslMode::Prefer;
        let mut root_cert = None;
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| StateError::Url(format!("{key}: the value is not UTF-8 once decoded")))?;
            match key {
                "schema" => schema = Some(schema_name(&value)?),
                "sslmode" => mode = SslMode::parse(&value)?,
                "sslrootcert" => root_cert = Some(PathBuf::from(&*value)),
                // tokio-postgres decodes the value again: kept encoded as it came.
                _ => rest.push(pair),
            }
        }
        let base = if rest.is_empty() { base.to_string() } else { format!("{base}?{}", rest.join("&")) };
        let mut config = tokio_postgres::Config::from_str(&base)?;
        config.ssl_mode(mode.negotiation());
        Ok(Self { config, tls: TlsSettings { mode, root_cert }, schema })
    }
}

/// A schema name is spliced into SQL, so it is held to letters, digits and `_`.
fn schema_name(name: &str) -> Result<String, StateError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StateError::Url(format!("schema `{name}` must be letters, digits and '_'")));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use tokio_postgres::config::{Host, SslMode as Negotiate};

    use super::*;

    #[test]
    fn tessera_parameters_are_taken_out_and_the_rest_reaches_tokio_postgres() {
        let t = Target::parse(
            "postgres://u@db.example:6543/st?schema=s1&sslmode=verify-full&application_name=a%20b&sslrootcert=%2Fetc%2Fca%20x.pem",
        )
        .unwrap();
        assert_eq!(t.schema.as_deref(), Some("s1"));
        assert_eq!(t.tls, TlsSettings { mode: SslMode::VerifyFull, root_cert: Some("/etc/ca x.pem".into()) });
        assert_eq!(t.config.get_ssl_mode(), Negotiate::Require);
        assert_eq!(t.config.get_application_name(), Some("a b"));
        assert_eq!(t.config.get_hosts(), [Host::Tcp("db.example".into())]);
        assert_eq!(t.config.get_ports(), [6543]);
        assert_eq!(t.config.get_dbname(), Some("st"));
    }

    #[test]
    fn the_default_is_prefer_and_disable_means_no_tls() {
        let t = Target::parse("postgres://u@h/db").unwrap();
        assert_eq!((t.tls.mode, t.config.get_ssl_mode(), t.schema), (SslMode::Prefer, Negotiate::Prefer, None));
        let t = Target::parse("postgresql://u@h/db?sslmode=disable").unwrap();
        assert_eq!(t.config.get_ssl_mode(), Negotiate::Disable);
    }

    #[test]
    fn unknown_modes_and_unsafe_schema_names_are_refused() {
        let err = Target::parse("postgres://u@h/db?sslmode=verify_full").unwrap_err().to_string();
        assert!(err.contains("sslmode=verify_full"), "{err}");
        let err = Target::parse("postgres://u@h/db?schema=x;drop").unwrap_err().to_string();
        assert!(err.contains("schema `x;drop`"), "{err}");
        assert!(Target::parse("postgres://u@h/db?schema=").is_err());
    }
}
