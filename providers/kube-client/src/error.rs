//! Kubernetes API and helm failures → [`ProviderError`].
//!
//! The API server answers errors with a `Status` object: 429 and 5xx are retryable (honouring
//! `Retry-After`, or the Status's `details.retryAfterSeconds`), 404 means gone, 410 (an expired
//! continue token or resourceVersion) is retryable from the start, 409 is a conflict
//! that clears (a `resourceVersion` race, an object still being deleted), and every other answer
//! (422 Invalid above all) is fatal with the server's own message. A connection that fails is
//! retryable. helm failing is fatal with helm's stderr.

use std::time::Duration;

use serde_json::Value;
use tessera_provider_api::{ProviderError, RetryReason};

/// Errors of this crate's own steps, before they become a [`ProviderError`].
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// helm could not render or pull the chart.
    #[error("{0}")]
    Helm(String),
    /// What helm printed cannot be applied as it is.
    #[error("{0}")]
    Render(String),
    /// The connection cannot be configured (a missing output, an unknown auth).
    #[error("{0}")]
    Config(String),
}

impl From<KubeError> for ProviderError {
    fn from(e: KubeError) -> Self {
        ProviderError::Fatal(e.to_string())
    }
}

/// Classifies an API server answer by status code. `body` is the response body (a `Status`
/// object, or text from a proxy); `retry_after` the `Retry-After` header, when sent.
pub fn classify(what: &str, code: u16, body: &str, retry_after: Option<Duration>) -> ProviderError {
    let status: Option<Value> = serde_json::from_str(body).ok();
    let message = status
        .as_ref()
        .and_then(|s| s.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| body.trim().chars().take(500).collect());
    let retry_after = retry_after.or_else(|| {
        status
            .as_ref()
            .and_then(|s| s.pointer("/details/retryAfterSeconds"))
            .and_then(Value::as_u64)
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
    });
    let text = format!("{what}: {code} {message}");
    match code {
        429 => ProviderError::Retryable { reason: RetryReason::Throttled, message: text, retry_after },
        500..=599 => ProviderError::Retryable { reason: RetryReason::Unavailable, message: text, retry_after },
        404 => ProviderError::NotFound(text),
        // Gone: a list's continue token or a resourceVersion expired; reading again from the
        // start succeeds.
        410 => ProviderError::Retryable { reason: RetryReason::Unavailable, message: text, retry_after },
        409 => ProviderError::Conflict(text),
        _ => ProviderError::Fatal(text),
    }
}

/// `Retry-After` in its seconds form (the API server never sends the date form).
pub fn retry_after(header: Option<&http::HeaderValue>) -> Option<Duration> {
    header?.to_str().ok()?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Why a request never got an answer, classified once from the transport error's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    Refused,
    Dns,
    Tls,
    Timeout,
}

impl Unreachable {
    /// What failed, and the likely cause and fix, in the user's terms.
    fn explain(self) -> (&'static str, &'static str) {
        match self {
            Self::Refused => (
                "connection refused",
                "nothing listens there: the API server is down, or a proxy or load balancer in front of it is",
            ),
            Self::Dns => (
                "the name does not resolve",
                "a private endpoint seen from outside its network (private DNS), or a typo in an endpoint override",
            ),
            Self::Tls => (
                "the TLS handshake failed",
                "the server's certificate is not the cluster's CA (a proxy intercepting TLS, or a stale CA in state)",
            ),
            Self::Timeout => (
                "the connection timed out",
                "a firewall drops the traffic, or the endpoint is private and this machine is outside its network",
            ),
        }
    }

    /// Classifies by the error chain: I/O error kinds first, then the words hyper and rustls use
    /// (their error types are private to kube-rs's client stack).
    pub fn of(e: &(dyn std::error::Error + 'static)) -> Option<Self> {
        let mut found = None;
        let mut next = vec![e];
        while let Some(err) = next.pop() {
            if err.downcast_ref::<rustls::Error>().is_some() {
                return Some(Self::Tls);
            }
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => return Some(Self::Refused),
                    std::io::ErrorKind::TimedOut => found = found.or(Some(Self::Timeout)),
                    _ => {}
                }
                // An I/O error's `source()` skips the error it wraps (rustls's, inside two I/O
                // errors from hyper-rustls): look at that one too.
                if let Some(inner) = io.get_ref() {
                    next.push(inner);
                }
            }
            let text = err.to_string().to_lowercase();
            if text.contains("dns error") || text.contains("failed to lookup address") {
                return Some(Self::Dns);
            }
            if text.contains("certificate") || text.contains("tls") || text.contains("handshake") {
                found = Some(Self::Tls);
            } else if text.contains("connection refused") {
                return Some(Self::Refused);
            } else if text.contains("timed out") || text.contains("elapsed") {
                found = found.or(Some(Self::Timeout));
            }
            next.extend(err.source());
        }
        found
    }
}

/// A failure to get an answer from the server. Refused, DNS, TLS and timeouts are
/// [`RetryReason::Unreachable`], with one message naming the endpoint, what failed, and the likely
/// cause and fix; the engine retries them for a bounded time only. Other transport failures
/// (a reset mid-answer) are retryable as unavailable; a failing auth plugin is fatal.
pub fn transport(what: &str, endpoint: &str, e: &kube::Error) -> ProviderError {
    match e {
        kube::Error::Auth(_) | kube::Error::InferKubeconfig(_) | kube::Error::BuildRequest(_) => {
            ProviderError::Fatal(format!("{what}: {e}"))
        }
        _ => match Unreachable::of(e) {
            Some(kind) => unreachable(what, endpoint, kind),
            None => ProviderError::unavailable(format!("{what}: {e}")),
        },
    }
}

/// The one message for an API server that cannot be reached.
pub fn unreachable(what: &str, endpoint: &str, kind: Unreachable) -> ProviderError {
    let (failed, cause) = kind.explain();
    ProviderError::unreachable(format!(
        "cannot reach the Kubernetes API at {endpoint} ({what}): {failed}. Likely cause: {cause}. \
         Fix: run Tessera from a machine that can reach the endpoint (inside the cluster's network), \
         or add this machine's address range to the spec's `apiAccess.allowedCidrs`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_api_server_answers() {
        let throttled = classify(
            "apply",
            429,
            r#"{"kind":"Status","message":"too many requests","details":{"retryAfterSeconds":3}}"#,
            None,
        );
        assert!(throttled.is_throttle());
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(3)));
        let header_wins = classify("apply", 429, "{}", Some(Duration::from_secs(9)));
        assert_eq!(header_wins.retry_after(), Some(Duration::from_secs(9)));
        let unavailable = classify("get", 503, "upstream connect error", None);
        assert!(unavailable.is_retryable() && !unavailable.is_throttle());
        assert!(unavailable.to_string().contains("upstream connect error"));
        assert!(matches!(classify("get", 404, "{}", None), ProviderError::NotFound(_)));
        assert!(matches!(classify("apply", 409, "{}", None), ProviderError::Conflict(_)));
        assert!(classify("listing Pod", 410, r#"{"reason":"Expired"}"#, None).is_retryable(), "list again");
        let invalid = classify(
            "apply",
            422,
            r#"{"kind":"Status","reason":"Invalid","message":"DaemonSet.apps \"x\" is invalid: spec.selector: Required value"}"#,
            None,
        );
        assert!(
            matches!(&invalid, ProviderError::Fatal(m) if m == "apply: 422 DaemonSet.apps \"x\" is invalid: spec.selector: Required value"),
            "{invalid}"
        );
    }

    #[test]
    fn transport_errors_are_classified_by_their_chain() {
        let timed_out = std::io::Error::new(std::io::ErrorKind::TimedOut, "deadline");
        assert_eq!(Unreachable::of(&timed_out), Some(Unreachable::Timeout));
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "nope");
        assert_eq!(Unreachable::of(&refused), Some(Unreachable::Refused));
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        assert_eq!(Unreachable::of(&reset), None, "a reset mid-answer is not `unreachable`");
        let msg = unreachable("get Node", "https://10.0.0.1/", Unreachable::Timeout).to_string();
        assert!(msg.contains("https://10.0.0.1/") && msg.contains("timed out") && msg.contains("private"), "{msg}");
    }

    #[test]
    fn reads_retry_after_seconds() {
        assert_eq!(retry_after(Some(&http::HeaderValue::from_static("5"))), Some(Duration::from_secs(5)));
        assert_eq!(retry_after(Some(&http::HeaderValue::from_static("soon"))), None);
        assert_eq!(retry_after(None), None);
    }
}
