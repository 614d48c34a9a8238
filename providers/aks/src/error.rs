//! ARM errors → [`ProviderError`]: 429 and 5xx are retryable (honouring `Retry-After`), another
//! operation in progress or a stale eTag is a conflict (retried), a missing resource or group
//! means gone, and everything else is fatal with ARM's own code and message.

use std::time::Duration;

use tessera_provider_api::ProviderError;

use crate::model::CloudError;

/// The conflict codes: another operation on the cluster, or an eTag that changed under us.
const CONFLICTS: [&str; 4] = ["OperationNotAllowed", "EtagMismatch", "Conflict", "AnotherOperationInProgress"];
const GONE: [&str; 4] = ["ResourceNotFound", "ResourceGroupNotFound", "NotFound", "NotFoundError"];
/// 409s that no wait clears: a lock on the scope, a provider the subscription never registered.
const NEVER_CLEARS: [&str; 3] = ["ScopeLocked", "MissingSubscriptionRegistration", "SubscriptionNotRegistered"];
/// The longest `Retry-After` taken as is: a larger one (or a mistaken one) waits this long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// `Retry-After` in seconds (ARM's form; an HTTP date is not used by ARM and is ignored).
pub fn retry_after(value: Option<&str>) -> Option<Duration> {
    value.and_then(|v| v.trim().parse::<u64>().ok()).map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
}

/// Code and message from a body of either shape; the status line when the body is not ARM's.
pub fn parse_body(status: u16, body: &str) -> (String, String) {
    let parsed: Option<CloudError> = serde_json::from_str(body).ok();
    let (code, message) = parsed.map(CloudError::parts).unwrap_or_default();
    let code = code.unwrap_or_else(|| format!("HTTP{status}"));
    let message = message.unwrap_or_else(|| body.chars().take(300).collect());
    (code, message)
}

/// Classifies an error response; `what` names the call.
pub fn classify(what: &str, status: u16, body: &str, retry: Option<Duration>) -> ProviderError {
    let (code, message) = parse_body(status, body);
    let text = format!("{what}: {code}: {message}");
    match status {
        429 => ProviderError::throttled(text).with_retry_after(retry),
        500..=599 => ProviderError::unavailable(text).with_retry_after(retry),
        _ if NEVER_CLEARS.contains(&code.as_str()) => ProviderError::Fatal(text),
        409 | 412 => ProviderError::Conflict(text),
        404 => ProviderError::NotFound(text),
        _ if CONFLICTS.contains(&code.as_str()) => ProviderError::Conflict(text),
        _ if GONE.contains(&code.as_str()) => ProviderError::NotFound(text),
        _ => ProviderError::Fatal(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_error_shapes_and_the_documented_codes_are_classified() {
        let nested =
            r#"{"error":{"code":"OperationNotAllowed","message":"Another operation (Updating) is in progress"}}"#;
        assert!(
            matches!(classify("put", 409, nested, None), ProviderError::Conflict(m) if m.contains("Another operation"))
        );
        let flat = r#"{"code":"ResourceGroupNotFound","message":"Resource group 'rg' could not be found."}"#;
        assert!(
            matches!(classify("get", 404, flat, None), ProviderError::NotFound(m) if m.contains("ResourceGroupNotFound"))
        );
        let throttled = classify("get", 429, "{}", retry_after(Some("7")));
        assert!(throttled.is_throttle());
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(7)));
        assert!(classify("get", 503, "Service Unavailable", None).is_retryable());
        let fatal = classify("put", 400, r#"{"error":{"code":"SystemPoolHasRestrictedTaint","message":"no"}}"#, None);
        assert!(matches!(&fatal, ProviderError::Fatal(m) if m == "put: SystemPoolHasRestrictedTaint: no"), "{fatal}");
        assert!(!fatal.is_retryable());
        assert!(matches!(
            classify("put", 400, r#"{"code":"EtagMismatch","message":"x"}"#, None),
            ProviderError::Conflict(_)
        ));
        assert_eq!(parse_body(502, "<html>bad gateway</html>").0, "HTTP502");
        let locked = classify("put", 409, r#"{"error":{"code":"ScopeLocked","message":"read-only lock"}}"#, None);
        assert!(matches!(locked, ProviderError::Fatal(_)), "no wait clears a lock: {locked}");
        assert_eq!(retry_after(Some("86400")), Some(MAX_RETRY_AFTER));
    }
}
