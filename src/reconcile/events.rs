//! JSON-lines events: one per tick, one per drifted field. Stdout carries nothing else, so a log
//! pipeline can parse every line.

use std::io::Write;
use std::sync::Mutex;

use serde_json::{Value, json};

use super::report::{TickReport, tick_json};

#[derive(Debug, Clone)]
pub enum Event {
    Tick(Box<TickReport>),
    Drift {
        commit: Option<String>,
        placement: String,
        address: String,
        field: String,
        /// The leaf's path as a list of keys and indexes.
        path: Value,
        recorded: Value,
        live: Value,
    },
    /// The metrics server is listening (its address, once bound: `--listen 127.0.0.1:0` picks one).
    Listening(String),
}

impl Event {
    pub fn to_json(&self) -> Value {
        let at = crate::state::now_secs();
        let mut v = match self {
            Self::Tick(r) => tick_json(r),
            Self::Drift { commit, placement, address, field, path, recorded, live } => json!({
                "event": "drift", "commit": commit, "placement": placement, "address": address,
                "field": field, "path": path, "recorded": recorded, "live": live,
            }),
            Self::Listening(addr) => json!({ "event": "listening", "address": addr }),
        };
        v["at"] = at.into();
        v
    }
}

pub trait Events: Send + Sync {
    fn emit(&self, event: &Event);
}

/// One JSON document per line on stdout.
pub struct Stdout;

impl Events for Stdout {
    fn emit(&self, event: &Event) {
        let mut out = std::io::stdout().lock();
        // A closed stdout (the reader went away) must not stop the loop.
        let _ = writeln!(out, "{}", event.to_json());
        let _ = out.flush();
    }
}

/// Keeps events, for tests.
#[derive(Default)]
pub struct Recorded(Mutex<Vec<Value>>);

impl Recorded {
    pub fn take(&self) -> Vec<Value> {
        self.0.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default()
    }
}

impl Events for Recorded {
    fn emit(&self, event: &Event) {
        if let Ok(mut v) = self.0.lock() {
            v.push(event.to_json());
        }
    }
}
