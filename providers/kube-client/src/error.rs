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

/// A failure to reach the server at all (refused, reset, TLS, auth plugin): retryable, since a
/// cluster made in the same apply may not answer yet.
pub fn transport(what: &str, e: &kube::Error) -> ProviderError {
    match e {
        kube::Error::Auth(_) | kube::Error::InferKubeconfig(_) | kube::Error::BuildRequest(_) => {
            ProviderError::Fatal(format!("{what}: {e}"))
        }
        _ => ProviderError::unavailable(format!("{what}: {e}")),
    }
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
    fn reads_retry_after_seconds() {
        assert_eq!(retry_after(Some(&http::HeaderValue::from_static("5"))), Some(Duration::from_secs(5)));
        assert_eq!(retry_after(Some(&http::HeaderValue::from_static("soon"))), None);
        assert_eq!(retry_after(None), None);
    }
}
