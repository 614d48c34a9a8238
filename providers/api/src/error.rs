use std::time::Duration;

/// Why a retryable error may succeed on a later attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    /// The cloud asked us to slow down (HTTP 429, `ThrottlingException`, ...).
    Throttled,
    /// A transient server-side failure (HTTP 5xx, timeouts).
    Unavailable,
    /// The server could not be reached at all: connection refused, a name that does not
    /// resolve, a TLS handshake that fails, a connection that times out. Classified once, where
    /// the client sees the transport error, so the message already names the endpoint, what
    /// failed and the likely cause. The request most likely never reached the server. Retried
    /// for a bounded time only (`RetryPolicy::unreachable_for` in the engine): an API that stays
    /// unreachable is a network or access problem that retrying does not fix.
    Unreachable,
}

/// A failed provider call, classified so that the executor knows what to do next.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// Worth retrying with backoff.
    #[error("{reason:?}: {message}")]
    Retryable { reason: RetryReason, message: String, retry_after: Option<Duration> },
    /// The resource is busy or in a conflicting state (e.g. an update is already in progress).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The resource does not exist (any more).
    #[error("not found: {0}")]
    NotFound(String),
    /// The call cannot succeed as made; the cloud's own message is kept verbatim.
    #[error("{0}")]
    Fatal(String),
    /// This provider was built read-only and refused a mutating call before sending anything.
    #[error("refused: {0} is read-only here")]
    ReadOnly(String),
}

impl ProviderError {
    pub fn throttled(message: impl Into<String>) -> Self {
        Self::Retryable { reason: RetryReason::Throttled, message: message.into(), retry_after: None }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Retryable { reason: RetryReason::Unavailable, message: message.into(), retry_after: None }
    }

    /// The server could not be reached (see [`RetryReason::Unreachable`]).
    pub fn unreachable(message: impl Into<String>) -> Self {
        Self::Retryable { reason: RetryReason::Unreachable, message: message.into(), retry_after: None }
    }

    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Retryable { reason: RetryReason::Unreachable, .. })
    }

    /// Retryable errors and conflicts (which clear once the competing operation ends) are retried.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable { .. } | Self::Conflict(_))
    }

    /// How long the cloud asked us to wait before trying again (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Retryable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The same error, carrying the cloud's `Retry-After`.
    pub fn with_retry_after(mut self, after: Option<Duration>) -> Self {
        if let Self::Retryable { retry_after, .. } = &mut self {
            *retry_after = after;
        }
        self
    }

    pub fn is_throttle(&self) -> bool {
        matches!(self, Self::Retryable { reason: RetryReason::Throttled, .. })
    }
}
