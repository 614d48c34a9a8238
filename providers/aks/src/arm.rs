//! Azure Resource Manager over HTTP: authenticated requests, typed errors, and long-running
//! operations.
//!
//! ## Overview
//!
//! Every call carries a bearer token from the [`TokenSource`] and its `api-version`. A response
//! outside 2xx becomes a [`ProviderError`] through [`crate::error::classify`] (either error body
//! shape, `Retry-After` kept).
//!
//! ## Per-request retries
//!
//! Each request is retried on its own ([`RequestRetry`], backon): 429 and 503 with `Retry-After`
//! as the floor of the next delay, and transport failures, within a number of retries and a
//! time budget, after which the error goes to the engine's retry of the whole action. A request
//! that never left (the connection failed) is always repeated; one that may have been applied
//! (a 429/503 answer, a timeout) only when repeating it cannot do anything twice: reads, DELETE,
//! PUT with `If-None-Match`/`If-Match`, and POSTs that only read ([`Condition::ReadOnly`]). An
//! unconditional PUT is left to the engine, which reads before it writes again. So one throttled
//! request in a PUT → poll → read-back sequence no longer fails the whole sequence.
//!
//! A mutation may answer before it is done: a PUT with 200/201 and a non-terminal
//! `provisioningState`, a DELETE with 202. [`Arm::settle`] waits, through the shared poller, in
//! ARM's order of preference: the `Azure-AsyncOperation` status until `Succeeded`, `Failed` or
//! `Canceled`; else the `Location` until it stops answering 202; else the resource itself, until
//! its `provisioningState` is terminal (or, for a delete, until it is gone). `Retry-After` is a
//! floor for the next poll. The caller then reads the resource once more for its final form.

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::Value;
use tessera_provider_api::ProviderError;
use tessera_provider_api::poll::{PollPolicy, Seen, until};

use crate::auth::TokenSource;
use crate::error::{classify, retry_after};
use crate::model::OperationStatus;

pub const AZURE_ASYNC_OPERATION: &str = "azure-asyncoperation";

/// An answer: status, headers, and the body (JSON, or `Null` when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// An answer with nothing to poll: [`Arm::settle`] then reads the resource itself.
    pub fn empty() -> Self {
        Self { status: StatusCode::OK, headers: HeaderMap::new(), body: Value::Null }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn retry_after(&self) -> Option<Duration> {
        retry_after(self.header(RETRY_AFTER.as_str()))
    }

    /// The eTag: the body's, else the `ETag` header.
    pub fn etag(&self) -> Option<String> {
        let body = self.body.get("eTag").or_else(|| self.body.pointer("/properties/eTag"));
        body.and_then(Value::as_str).map(str::to_string).or_else(|| self.header("etag").map(str::to_string))
    }
}

/// A conditional request header.
#[derive(Debug, Clone, Copy)]
pub enum Condition<'a> {
    None,
    /// `If-None-Match: *`: create only; a repeat never overwrites.
    Absent,
    /// `If-Match: <eTag>`: change only what was read.
    Matches(&'a str),
    /// No header: a POST that only reads (`listClusterUserCredential`), safe to repeat.
    ReadOnly,
}

impl Condition<'_> {
    /// Whether sending the request twice cannot change anything twice.
    fn repeatable(self, method: &Method) -> bool {
        match *method {
            Method::GET | Method::HEAD | Method::DELETE => true,
            Method::PUT => matches!(self, Self::Absent | Self::Matches(_)),
            _ => matches!(self, Self::ReadOnly),
        }
    }
}

/// How one request is retried (see the module docs).
#[derive(Debug, Clone)]
pub struct RequestRetry {
    pub min_delay: Duration,
    pub max_delay: Duration,
    pub max_retries: usize,
    /// No retry starts later than this after the first attempt.
    pub budget: Duration,
}

impl RequestRetry {
    /// Delays from the poll policy's first delay (short against fixtures, `TESSERA_POLL_INTERVAL`),
    /// at most 1 s to start with; six retries within two minutes.
    pub fn from_poll(poll: &PollPolicy) -> Self {
        let min_delay = poll.min_delay.min(Duration::from_secs(1));
        Self {
            min_delay,
            max_delay: (min_delay * 16).min(Duration::from_secs(20)),
            max_retries: 6,
            budget: Duration::from_secs(120),
        }
    }
}

/// One failed attempt, and whether it may be made again.
struct Failed {
    error: ProviderError,
    again: Again,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Again {
    /// Nothing was sent: repeat whatever the request.
    Always,
    /// It may have been applied: repeat only a repeatable request.
    IfRepeatable,
    Never,
}

/// How a long-running operation ends for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ends {
    /// The resource is there, in a terminal `provisioningState`.
    Settled,
    /// The resource is gone.
    Gone,
}

pub struct Arm {
    http: reqwest::Client,
    endpoint: String,
    token: Arc<dyn TokenSource>,
    poll: PollPolicy,
    retry: RequestRetry,
}

impl Arm {
    pub fn new(endpoint: &str, token: Arc<dyn TokenSource>, poll: PollPolicy) -> Result<Self, ProviderError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| ProviderError::Fatal(format!("cannot build the HTTP client: {e}")))?;
        let retry = RequestRetry::from_poll(&poll);
        Ok(Self { http, endpoint: endpoint.trim_end_matches('/').to_string(), token, poll, retry })
    }

    /// Sends a request to `path` (an ARM id, or a full URL from `Location`), retried as the
    /// module docs say, and classifies a failure. `api` is the `api-version`, added unless the
    /// URL already has one.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        api: &str,
        body: Option<&Value>,
        condition: Condition<'_>,
    ) -> Result<Reply, ProviderError> {
        let repeatable = condition.repeatable(&method);
        let p = &self.retry;
        let backoff = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(p.min_delay)
            .with_max_delay(p.max_delay)
            .with_max_times(p.max_retries);
        let started = tokio::time::Instant::now();
        let attempt = || self.send_once(method.clone(), path, api, body, condition);
        attempt
            .retry(backoff)
            .when(|f: &Failed| f.again == Again::Always || (f.again == Again::IfRepeatable && repeatable))
            .adjust(|f: &Failed, delay| {
                let d = delay?;
                let d = f.error.retry_after().map_or(d, |after| d.max(after));
                (started.elapsed() + d <= p.budget).then_some(d)
            })
            .notify(|f: &Failed, d: Duration| tracing::debug!("ARM: {}; again in {d:?}", f.error))
            .await
            .map_err(|f| f.error)
    }

    async fn send_once(
        &self,
        method: Method,
        path: &str,
        api: &str,
        body: Option<&Value>,
        condition: Condition<'_>,
    ) -> Result<Reply, Failed> {
        let never = |error: ProviderError| Failed { error, again: Again::Never };
        let mut url = if path.starts_with("http://") || path.starts_with("https://") {
            // A status URL ARM handed out: the token goes to ARM's own host, never elsewhere.
            let origin = |u: &str| u.splitn(4, '/').take(3).collect::<Vec<_>>().join("/").to_ascii_lowercase();
            if origin(path) != origin(&self.endpoint) {
                return Err(never(ProviderError::Fatal(format!(
                    "ARM asked to poll {}, which is not {}: refused (the token goes to ARM only)",
                    origin(path),
                    origin(&self.endpoint)
                ))));
            }
            path.to_string()
        } else {
            format!("{}{path}", self.endpoint)
        };
        if !url.contains("api-version=") {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str("api-version=");
            url.push_str(api);
        }
        let what = format!("{method} {}", path.split('?').next().unwrap_or(path));
        let token = self.token.token().await.map_err(|error| {
            // A token endpoint that did not answer is worth asking again; a refusal is not.
            let again = if error.is_retryable() { Again::Always } else { Again::Never };
            Failed { error, again }
        })?;
        let mut request = self.http.request(method, &url).bearer_auth(token.expose_secret());
        request = match condition {
            Condition::None | Condition::ReadOnly => request,
            Condition::Absent => request.header("If-None-Match", "*"),
            Condition::Matches(etag) => request.header("If-Match", etag),
        };
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            // A connection that failed sent nothing; any other failure may have been applied.
            // Either way the engine's retry of the action is safe (conditional creates, reads
            // before updates).
            let again = if e.is_connect() { Again::Always } else { Again::IfRepeatable };
            Failed { error: ProviderError::unavailable(format!("{what}: {e}")), again }
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.map_err(|e| Failed {
            error: ProviderError::unavailable(format!("{what}: {e}")),
            again: Again::IfRepeatable,
        })?;
        if !status.is_success() {
            let wait = retry_after(headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()));
            let again = match status {
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => Again::IfRepeatable,
                _ => Again::Never,
            };
            return Err(Failed { error: classify(&what, status.as_u16(), &text, wait), again });
        }
        let body =
            if text.trim().is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::Null) };
        Ok(Reply { status, headers, body })
    }

    /// GETs a resource; `None` when it does not exist.
    pub async fn get(&self, path: &str, api: &str) -> Result<Option<Reply>, ProviderError> {
        match self.send(Method::GET, path, api, None, Condition::None).await {
            Ok(r) => Ok(Some(r)),
            Err(ProviderError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Waits until the operation that `started` answered has finished, then says how it ended.
    /// `resource` is the resource's path, read when ARM gave nothing else to poll.
    pub async fn settle(&self, started: &Reply, resource: &str, api: &str, what: &str) -> Result<Ends, ProviderError> {
        let first_wait = started.retry_after();
        if let Some(status_url) = started.header(AZURE_ASYNC_OPERATION).map(str::to_string) {
            self.poll_operation(&status_url, api, what, first_wait).await?;
            return self.poll_resource(resource, api, what).await;
        }
        if let Some(location) = started.header(LOCATION.as_str()).map(str::to_string) {
            self.poll_location(&location, api, what, first_wait).await?;
            return self.poll_resource(resource, api, what).await;
        }
        self.poll_resource(resource, api, what).await
    }

    /// The `Retry-After` of the answer that started the operation, before the first poll.
    async fn first_wait(&self, wait: Option<Duration>) {
        if let Some(wait) = wait {
            tokio::time::sleep(wait.min(self.poll.max_delay)).await;
        }
    }

    async fn poll_operation(
        &self,
        url: &str,
        api: &str,
        what: &str,
        first_wait: Option<Duration>,
    ) -> Result<(), ProviderError> {
        self.first_wait(first_wait).await;
        until(&self.poll, what, || async move {
            let reply = self.send(Method::GET, url, api, None, Condition::None).await?;
            // ARM's operation status always says where the operation is: an answer without one
            // is not "still running" (which would poll to the deadline), it is an answer Tessera
            // cannot read.
            let status: Option<OperationStatus> = serde_json::from_value(reply.body.clone()).ok();
            let Some(state) = status.as_ref().and_then(|s| s.status.clone()) else {
                return Err(ProviderError::Fatal(format!(
                    "{what}: the operation's status answer has no `status` (ARM always sends one), so whether \
                     the operation finished is unknown; the next plan reads the resource again"
                )));
            };
            let status = status.unwrap_or_default();
            match state.as_str() {
                "Succeeded" => Ok(Seen::Done(())),
                "Failed" | "Canceled" => {
                    let error = status.error.unwrap_or_default();
                    Err(ProviderError::Fatal(format!(
                        "{what}: {state}: {}: {}",
                        error.code.unwrap_or_default(),
                        error.message.unwrap_or_default()
                    )))
                }
                _ => Ok(pending(state, reply.retry_after())),
            }
        })
        .await
    }

    async fn poll_location(
        &self,
        url: &str,
        api: &str,
        what: &str,
        first_wait: Option<Duration>,
    ) -> Result<(), ProviderError> {
        self.first_wait(first_wait).await;
        until(&self.poll, what, || async move {
            match self.send(Method::GET, url, api, None, Condition::None).await {
                Ok(reply) if reply.status == StatusCode::ACCEPTED => {
                    Ok(pending("Accepted".into(), reply.retry_after()))
                }
                Ok(_) | Err(ProviderError::NotFound(_)) => Ok(Seen::Done(())),
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn poll_resource(&self, resource: &str, api: &str, what: &str) -> Result<Ends, ProviderError> {
        until(&self.poll, what, || async move {
            let Some(reply) = self.get(resource, api).await? else { return Ok(Seen::Done(Ends::Gone)) };
            let state = provisioning_state(&reply.body).unwrap_or("Succeeded").to_string();
            match state.as_str() {
                "Succeeded" => Ok(Seen::Done(Ends::Settled)),
                "Failed" | "Canceled" => Err(ProviderError::Fatal(format!("{what}: provisioningState {state}"))),
                _ => Ok(pending(state, reply.retry_after())),
            }
        })
        .await
    }
}

fn pending<T>(state: String, wait: Option<Duration>) -> Seen<T> {
    match wait {
        Some(w) => Seen::Wait(state, w),
        None => Seen::Pending(state),
    }
}

pub fn provisioning_state(body: &Value) -> Option<&str> {
    body.pointer("/properties/provisioningState").and_then(Value::as_str)
}
