//! `Status` answers, shaped as a real API server sends them (`kind: Status`, `reason`, `code`).
//!
//! ## Overview
//! Handlers return [`Failure`] for every refused request; [`Failure::body`] is the `Status` object.

use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct Failure {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Value,
    /// Seconds, sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

impl Failure {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Failure {
        Failure { code, reason, message: message.into(), details: Value::Null, retry_after: None }
    }

    pub fn with_details(mut self, details: Value) -> Failure {
        self.details = details;
        self
    }

    pub fn not_found(qualified_plural: &str, name: &str) -> Failure {
        Failure::new(404, "NotFound", format!("{qualified_plural} \"{name}\" not found"))
            .with_details(json!({"name": name, "kind": qualified_plural}))
    }

    pub fn no_resource() -> Failure {
        Failure::new(404, "NotFound", "the server could not find the requested resource")
    }

    pub fn bad_request(message: impl Into<String>) -> Failure {
        Failure::new(400, "BadRequest", message)
    }

    /// 422 `Invalid`, one cause per line of `message`.
    pub fn invalid(qualified_kind: &str, name: &str, message: &str) -> Failure {
        let causes: Vec<Value> =
            message.lines().map(|l| json!({"reason": "FieldValueInvalid", "message": l})).collect();
        Failure::new(422, "Invalid", format!("{qualified_kind} \"{name}\" is invalid: {message}"))
            .with_details(json!({"name": name, "kind": qualified_kind, "causes": causes}))
    }

    pub fn body(&self) -> Value {
        let mut v = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": self.message, "reason": self.reason, "code": self.code,
        });
        if !self.details.is_null() {
            v["details"] = self.details.clone();
        }
        if let Some(secs) = self.retry_after {
            v["details"]["retryAfterSeconds"] = json!(secs);
        }
        v
    }
}
