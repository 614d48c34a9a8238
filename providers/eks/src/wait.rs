//! Waiting for the cloud to settle: the shared long-running-operation poller of the provider API
//! (exponential backoff with jitter, a deadline, `Retry-After` honoured).

pub use tessera_provider_api::poll::{PollPolicy, Seen, until};
