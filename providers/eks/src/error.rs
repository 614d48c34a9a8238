//! AWS errors → [`ProviderError`]: throttling and 5xx are retryable, in-use is a conflict,
//! not-found means gone, and everything else is fatal with AWS's own message.

use aws_sdk_eks::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use tessera_provider_api::{ProviderError, RetryReason};

/// Classifies an AWS error code (and HTTP status) the same way for EKS, EC2 and IAM.
pub fn classify(code: &str, message: &str, status: u16) -> ProviderError {
    let text = if message.is_empty() { code.to_string() } else { format!("{code}: {message}") };
    match code {
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "RequestThrottled"
        | "RequestThrottledException" => ProviderError::throttled(text),
        _ if status == 429 => ProviderError::throttled(text),
        "ResourceInUseException"
        | "DependencyViolation"
        | "ConcurrentModification"
        | "ConcurrentModificationException"
        | "IncorrectState" => ProviderError::Conflict(text),
        "ResourceNotFoundException" | "NoSuchEntity" => ProviderError::NotFound(text),
        c if c.ends_with(".NotFound") => ProviderError::NotFound(text),
        _ if status >= 500 => {
            ProviderError::Retryable { reason: RetryReason::Unavailable, message: text, retry_after: None }
        }
        _ => ProviderError::Fatal(text),
    }
}

/// Maps any SDK error; `what` names the call for the message.
pub fn aws<E, R>(what: &str, e: SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus,
{
    match &e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            let status = se.raw().status_code();
            let mut mapped = classify(err.code().unwrap_or("Unknown"), err.message().unwrap_or(""), status);
            prefix(&mut mapped, what);
            mapped
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            ProviderError::unavailable(format!("{what}: {}", DisplayErrorContext(&e)))
        }
        _ => ProviderError::Fatal(format!("{what}: {}", DisplayErrorContext(&e))),
    }
}

fn prefix(e: &mut ProviderError, what: &str) {
    let msg = match e {
        ProviderError::Retryable { message, .. } => message,
        ProviderError::Conflict(m)
        | ProviderError::NotFound(m)
        | ProviderError::Fatal(m)
        | ProviderError::ReadOnly(m) => m,
    };
    *msg = format!("{what}: {msg}");
}

/// The raw HTTP response's status, whatever the response type.
pub trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_sdk_eks::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_documented_codes() {
        assert!(classify("ThrottlingException", "Rate exceeded", 400).is_throttle());
        assert!(classify("RequestLimitExceeded", "", 503).is_throttle());
        assert!(classify("Whatever", "", 429).is_throttle());
        assert!(matches!(
            classify("ServiceUnavailableException", "", 503),
            ProviderError::Retryable { reason: RetryReason::Unavailable, .. }
        ));
        assert!(matches!(classify("ResourceInUseException", "", 409), ProviderError::Conflict(_)));
        assert!(matches!(classify("DependencyViolation", "", 400), ProviderError::Conflict(_)));
        assert!(matches!(classify("ResourceNotFoundException", "", 404), ProviderError::NotFound(_)));
        assert!(matches!(classify("InvalidVpcID.NotFound", "", 400), ProviderError::NotFound(_)));
        assert!(matches!(classify("NoSuchEntity", "", 404), ProviderError::NotFound(_)));
        let fatal = classify("InvalidParameterException", "Subnets are in the same AZ", 400);
        assert!(
            matches!(&fatal, ProviderError::Fatal(m) if m == "InvalidParameterException: Subnets are in the same AZ")
        );
    }
}
