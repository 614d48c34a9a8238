//! What the fixture saw and what a test asked it to do wrong: recorded requests, rejected
//! objects, and injected failures.
//!
//! ## Overview
//! Every request is recorded with the status code it got. Every object refused by validation is
//! also a [`Rejection`], so that `assert_no_rejections` fails a test even when the client
//! swallowed the 422. A [`Fault`] answers the next `times` matching requests with an error
//! status (and `Retry-After`) instead of serving them.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string (without `?`), empty when none.
    pub query: String,
    pub content_type: Option<String>,
    /// The scheme of the `Authorization` header (`Bearer`), never the credential.
    pub auth_scheme: Option<String>,
    /// The body as JSON (YAML apply bodies are converted), `None` when empty or unparsable.
    pub body: Option<Value>,
    pub status: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub method: String,
    pub path: String,
    /// `<apiVersion>/<kind>/<namespace>/<name>` of the object as sent.
    pub object_id: String,
    pub message: String,
    /// The object as received.
    pub object: Value,
}

/// An injected failure: the next `times` requests whose path contains `path_contains` (and whose
/// method matches, when set) get `status` instead of being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub path_contains: String,
    pub method: Option<String>,
    pub times: u32,
    pub status: u16,
    pub retry_after_seconds: Option<u64>,
}

impl Fault {
    pub fn new(path_contains: &str, times: u32, status: u16) -> Fault {
        Fault { path_contains: path_contains.to_string(), method: None, times, status, retry_after_seconds: None }
    }

    pub fn method(mut self, method: &str) -> Fault {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Fault {
        self.retry_after_seconds = Some(seconds);
        self
    }

    pub(crate) fn matches(&self, method: &str, path: &str) -> bool {
        self.times > 0 && path.contains(&self.path_contains) && self.method.as_deref().is_none_or(|m| m == method)
    }

    pub(crate) fn reason(&self) -> &'static str {
        match self.status {
            429 => "TooManyRequests",
            409 => "Conflict",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "InternalError",
        }
    }
}

#[derive(Debug, Default)]
pub struct Journal {
    pub requests: Vec<RecordedRequest>,
    pub rejections: Vec<Rejection>,
    pub faults: Vec<Fault>,
}

impl Journal {
    /// Takes one use of the first fault matching the request.
    pub fn take_fault(&mut self, method: &str, path: &str) -> Option<Fault> {
        let fault = self.faults.iter_mut().find(|f| f.matches(method, path))?;
        fault.times -= 1;
        let taken = fault.clone();
        self.faults.retain(|f| f.times > 0);
        Some(taken)
    }
}
