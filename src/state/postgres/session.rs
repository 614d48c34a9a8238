//! ## Overview
//!
//! One PostgreSQL connection that comes back by itself.
//!
//! A team state outlives its connections: the server restarts, a proxy drops idle sessions, an
//! operator runs `pg_terminate_backend`. The session keeps one client; before each operation it
//! replaces a client whose connection has ended, and an operation that fails because the
//! connection was lost is run again on a new one, with exponential backoff (backon), a bounded
//! number of times.
//!
//! Running a write again is safe only while it cannot have happened: each write is one
//! transaction ([`Session::write`]), and PostgreSQL rolls back a transaction whose connection
//! drops before `COMMIT`. So a write that failed before its commit was sent is run again from its
//! first statement; a write whose connection was lost *during* the commit is not, because it may
//! have committed: it fails, and the intent journal (see [`crate::state`]) covers the unknown
//! outcome. Nothing is ever half-committed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tokio::sync::Mutex;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::target::Target;
use crate::state::StateError;

/// Attempts after the first, and the bounds of the waits between them: about 5 s in all, enough
/// for a server restart, short enough that a wrong host fails soon.
const RETRIES: usize = 6;
const MIN_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(2);

pub struct Session {
    target: Target,
    connector: MakeRustlsConnect,
    /// `None` after a loss, until the next operation connects again.
    client: Mutex<Option<Arc<Client>>>,
}

/// How one attempt failed.
enum Failure {
    /// Nothing happened on the server: the operation may be run again.
    Retry(StateError),
    Final(StateError),
}

impl Failure {
    fn classify(e: StateError) -> Self {
        if run_again_is_safe(&e) { Self::Retry(e) } else { Self::Final(e) }
    }

    fn error(&self) -> &StateError {
        match self {
            Self::Retry(e) | Self::Final(e) => e,
        }
    }
}

/// One database step of an operation: a future on the client it was handed (an `Arc`, so
/// that the step owns its handle and may borrow only what the operation borrows, `'a`).
pub type Step<'a, T> = Pin<Box<dyn Future<Output = Result<T, StateError>> + Send + 'a>>;

impl Session {
    /// Connects to `target` (retrying while the server cannot be reached).
    pub async fn open(target: Target) -> Result<Self, StateError> {
        let connector = target.tls.connector()?;
        let session = Self { target, connector, client: Mutex::new(None) };
        session.read(|_client| Box::pin(async { Ok(()) })).await?;
        Ok(session)
    }

    /// Runs a read. Reads change nothing, so a lost connection just means reading again.
    pub async fn read<'a, T, F>(&self, op: F) -> Result<T, StateError>
    where
        F: Fn(Arc<Client>) -> Step<'a, T> + Sync,
    {
        retrying(|| self.read_once(&op)).await
    }

    /// Runs `body` in one transaction (the client it is handed is inside it) and commits.
    /// `body`'s error rolls the transaction back. Run again from the start only when the
    /// connection was lost before the commit was sent.
    pub async fn write<'a, T, F>(&self, body: F) -> Result<T, StateError>
    where
        F: Fn(Arc<Client>) -> Step<'a, T> + Sync,
    {
        retrying(|| self.write_once(&body)).await
    }

    async fn read_once<'a, T, F>(&self, op: &F) -> Result<T, Failure>
    where
        F: Fn(Arc<Client>) -> Step<'a, T> + Sync,
    {
        let mut slot = self.client.lock().await;
        let client = self.live(&mut slot).await?;
        let result = op(client).await.map_err(Failure::classify);
        forget_if_lost(&mut slot, result)
    }

    async fn write_once<'a, T, F>(&self, body: &F) -> Result<T, Failure>
    where
        F: Fn(Arc<Client>) -> Step<'a, T> + Sync,
    {
        let mut slot = self.client.lock().await;
        let client = self.live(&mut slot).await?;
        let (result, clean) = transact(&client, body).await;
        if !clean {
            // A session left inside a transaction must not serve the next operation.
            *slot = None;
        }
        forget_if_lost(&mut slot, result)
    }

    /// The client in `slot`, connecting first when there is none or its connection ended.
    async fn live(&self, slot: &mut Option<Arc<Client>>) -> Result<Arc<Client>, Failure> {
        let client = match slot.take() {
            Some(client) if !client.is_closed() => client,
            _ => Arc::new(self.connect().await.map_err(Failure::classify)?),
        };
        Ok(slot.insert(client).clone())
    }

    async fn connect(&self) -> Result<Client, StateError> {
        let (client, connection) = self.target.config.connect(self.connector.clone()).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!("PostgreSQL state connection closed: {e}");
            }
        });
        if let Some(schema) = &self.target.schema {
            // Checked to be letters, digits and '_' when the URL was read.
            client.batch_execute(&format!("SET search_path TO {schema}")).await?;
        }
        Ok(client)
    }
}

/// One transaction: `BEGIN`, `body`, then `COMMIT`, or `ROLLBACK` after `body`'s error (what
/// tokio-postgres's `Transaction` does, here over a shared handle). Also says whether the
/// session is out of the transaction. A failure of the commit itself is final whatever its
/// cause: the transaction may have committed, so running it again could apply it twice.
async fn transact<'a, T, F>(client: &Arc<Client>, body: &F) -> (Result<T, Failure>, bool)
where
    F: Fn(Arc<Client>) -> Step<'a, T> + Sync,
{
    if let Err(e) = client.batch_execute("BEGIN").await {
        return (Err(Failure::classify(e.into())), false);
    }
    let value = match body(client.clone()).await {
        Ok(value) => value,
        Err(e) => {
            let clean = client.batch_execute("ROLLBACK").await.is_ok();
            return (Err(Failure::classify(e)), clean);
        }
    };
    match client.batch_execute("COMMIT").await {
        Ok(()) => (Ok(value), true),
        Err(e) => {
            if connection_lost(&e) {
                // Only the intent journal can tell whether it landed.
                tracing::warn!("PostgreSQL state: connection lost while committing: {e}");
            }
            let error = if connection_lost(&e) {
                StateError::CommitUnknown(crate::state::with_causes(&e))
            } else {
                StateError::Postgres(e)
            };
            (Err(Failure::Final(error)), false)
        }
    }
}

/// Drops the client after a failure that means its connection is gone, so that the next attempt
/// connects again.
fn forget_if_lost<T>(slot: &mut Option<Arc<Client>>, result: Result<T, Failure>) -> Result<T, Failure> {
    if let Err(Failure::Retry(StateError::Postgres(e)) | Failure::Final(StateError::Postgres(e))) = &result
        && connection_lost(e)
    {
        *slot = None;
    }
    result
}

/// Runs `attempt` until it succeeds, fails for good, or the retries run out.
async fn retrying<T, F, Fut>(attempt: F) -> Result<T, StateError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let backoff = ExponentialBuilder::default()
        .with_jitter()
        .with_min_delay(MIN_DELAY)
        .with_max_delay(MAX_DELAY)
        .with_max_times(RETRIES);
    attempt
        .retry(backoff)
        .when(|f: &Failure| matches!(f, Failure::Retry(_)))
        .notify(|f: &Failure, wait: Duration| {
            tracing::warn!("PostgreSQL state: {}; trying again in {wait:?}", f.error());
        })
        .await
        .map_err(|f| match f {
            // Still retryable when the retries ran out: typed so, for callers that wait longer.
            Failure::Retry(e) => StateError::Unavailable { attempts: RETRIES + 1, message: e.to_string() },
            Failure::Final(e) => e,
        })
}

/// Whether the operation that failed with `e` certainly did nothing, so that running it again
/// is safe and may succeed: the connection was lost or could not be made, or the server rolled
/// the transaction back to break a conflict.
fn run_again_is_safe(e: &StateError) -> bool {
    let StateError::Postgres(e) = e else { return false };
    connection_lost(e)
        || e.code()
            .is_some_and(|code| [SqlState::T_R_SERIALIZATION_FAILURE, SqlState::T_R_DEADLOCK_DETECTED].contains(code))
}

/// Whether `e` says the connection is gone or could not be made, for a reason that may pass: a
/// refused certificate, a wrong password or a missing database are not such reasons.
fn connection_lost(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        return code.code().starts_with("08")
            || [SqlState::ADMIN_SHUTDOWN, SqlState::CRASH_SHUTDOWN, SqlState::CANNOT_CONNECT_NOW].contains(code);
    }
    // A TLS refusal comes as InvalidData: trying again would meet the same certificate.
    let io = std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>());
    io.is_some_and(|io| !matches!(io.kind(), std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput))
}
