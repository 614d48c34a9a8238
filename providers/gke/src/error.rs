//! Google API errors → [`ProviderError`].
//!
//! GKE answers with a `google.rpc.Status` (`{"error": {code, message, status}}`):
//! - `FAILED_PRECONDITION` ("...is currently upgrading cluster...", "incompatible operation") and
//!   `ABORTED` are conflicts: another operation holds the cluster, and the call is worth
//!   repeating once it ends;
//! - `RESOURCE_EXHAUSTED` (429, the concurrent-operation limit and quotas) is throttling;
//! - `UNAVAILABLE`, `DEADLINE_EXCEEDED`, `INTERNAL`, any 5xx and transport failures are
//!   retryable;
//! - `NOT_FOUND` means gone; `ALREADY_EXISTS` is left to the create that got it (adopt by name
//!   and labels);
//! - anything else is fatal with the Status message, verbatim.

use google_cloud_gax::error::Error;
use google_cloud_gax::error::rpc::Code;
use tessera_provider_api::ProviderError;

/// Classifies a `google.rpc.Code` and its message; `what` names the call.
pub fn classify(what: &str, code: Code, message: &str) -> ProviderError {
    let text = format!("{what}: {} {message}", code.name());
    match code {
        Code::FailedPrecondition | Code::Aborted => ProviderError::Conflict(text),
        Code::ResourceExhausted => ProviderError::throttled(text),
        Code::Unavailable | Code::DeadlineExceeded | Code::Internal | Code::Unknown => ProviderError::unavailable(text),
        Code::NotFound => ProviderError::NotFound(text),
        _ => ProviderError::Fatal(text),
    }
}

/// The Status code of a service error, if the cloud answered with one.
pub fn code(e: &Error) -> Option<Code> {
    e.status().map(|s| s.code)
}

/// Maps any client error.
pub fn gcp(what: &str, e: Error) -> ProviderError {
    if let Some(status) = e.status() {
        return classify(what, status.code, &status.message);
    }
    match e.http_status_code() {
        Some(429) => ProviderError::throttled(format!("{what}: HTTP 429: {e}")),
        Some(s) if s >= 500 => ProviderError::unavailable(format!("{what}: HTTP {s}: {e}")),
        Some(404) => ProviderError::NotFound(format!("{what}: {e}")),
        _ if e.is_timeout() || e.is_io() || e.is_connect() || e.is_transport() || e.is_exhausted() => {
            ProviderError::unavailable(format!("{what}: {e}"))
        }
        _ => ProviderError::Fatal(format!("{what}: {e}")),
    }
}

/// A read's answer: `NOT_FOUND` is `None`.
pub fn found<T>(r: Result<T, Error>, what: &str) -> Result<Option<T>, ProviderError> {
    match r.map_err(|e| gcp(what, e)) {
        Ok(v) => Ok(Some(v)),
        Err(ProviderError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A status as `read` reports it: the name, and GKE's message when it has one. `statusMessage`
/// is deprecated for `conditions`, but GKE still sets it; the conditions' messages speak when it
/// is empty.
pub fn status_text<'a>(name: Option<&str>, message: &str, conditions: impl Iterator<Item = &'a str>) -> String {
    let name = name.unwrap_or("STATUS_UNSPECIFIED");
    let message = if message.is_empty() {
        conditions.filter(|m| !m.is_empty()).collect::<Vec<_>>().join("; ")
    } else {
        message.to_string()
    };
    if message.is_empty() { name.to_string() } else { format!("{name}: {message}") }
}

/// An operation that ended with an `error`: classified like a call's.
pub fn operation_error(what: &str, status: &google_cloud_rpc::model::Status) -> ProviderError {
    classify(what, Code::from(status.code), &status.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_documented_codes() {
        let busy = classify("setAutoscaling", Code::FailedPrecondition, "Cluster is running incompatible operation");
        assert!(matches!(&busy, ProviderError::Conflict(m) if m.contains("incompatible operation")));
        assert!(busy.is_retryable());
        assert!(classify("create", Code::ResourceExhausted, "too many operations").is_throttle());
        assert!(classify("get", Code::Unavailable, "").is_retryable());
        assert!(matches!(classify("get", Code::NotFound, "gone"), ProviderError::NotFound(_)));
        let fatal = classify("create", Code::InvalidArgument, "Machine type x does not exist");
        assert!(
            matches!(&fatal, ProviderError::Fatal(m) if m.ends_with("INVALID_ARGUMENT Machine type x does not exist"))
        );
    }
}
