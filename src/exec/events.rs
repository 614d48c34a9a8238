//! What the executor reports while it runs, and where it goes: progress bars on a terminal,
//! JSON lines for CI, or a buffer for tests.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        run_id: String,
        steps: usize,
    },
    StepStarted {
        address: String,
        /// The placement the step acts for.
        placement: String,
        /// The rollout wave it belongs to, from 1, when the spec has a rollout.
        #[serde(skip_serializing_if = "Option::is_none")]
        wave: Option<usize>,
        op: String,
    },
    StepRetrying {
        address: String,
        /// The placement the step acts for.
        placement: String,
        /// The rollout wave it belongs to, from 1, when the spec has a rollout.
        #[serde(skip_serializing_if = "Option::is_none")]
        wave: Option<usize>,
        op: String,
        error: String,
        delay_ms: u64,
    },
    StepSucceeded {
        address: String,
        /// The placement the step acts for.
        placement: String,
        /// The rollout wave it belongs to, from 1, when the spec has a rollout.
        #[serde(skip_serializing_if = "Option::is_none")]
        wave: Option<usize>,
        op: String,
        id: String,
        elapsed_ms: u64,
    },
    StepFailed {
        address: String,
        /// The placement the step acts for.
        placement: String,
        /// The rollout wave it belongs to, from 1, when the spec has a rollout.
        #[serde(skip_serializing_if = "Option::is_none")]
        wave: Option<usize>,
        op: String,
        error: String,
    },
    StepSkipped {
        address: String,
        /// The placement the step acts for.
        placement: String,
        /// The rollout wave it belongs to, from 1, when the spec has a rollout.
        #[serde(skip_serializing_if = "Option::is_none")]
        wave: Option<usize>,
        op: String,
        because: String,
    },
    /// Stopped by Ctrl-C or SIGTERM before it finished (see `exec::step`).
    StepInterrupted {
        address: String,
        /// The placement the step acts for.
        placement: String,
        /// The rollout wave it belongs to, from 1, when the spec has a rollout.
        #[serde(skip_serializing_if = "Option::is_none")]
        wave: Option<usize>,
        op: String,
        why: String,
    },
    Interrupted {
        in_flight: usize,
    },
    /// A rollout wave starts its changes.
    WaveStarted {
        wave: usize,
        placements: Vec<String>,
        changes: usize,
    },
    /// A wave's changes are done: its gate is read after this long.
    Soaking {
        wave: usize,
        soak_ms: u64,
    },
    /// One placement's gate, read.
    GateRead {
        wave: usize,
        placement: String,
        passed: bool,
        /// What it saw that fails the gate.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        saw: Vec<String>,
    },
    /// The rollout stops at this wave; later waves do not start.
    RolloutHalted {
        wave: usize,
        reason: String,
    },
    RunFinished {
        succeeded: usize,
        failed: usize,
        skipped: usize,
        not_started: usize,
        retries: u64,
        elapsed_ms: u64,
    },
}

pub trait EventSink: Send + Sync {
    fn emit(&self, event: &Event);
}

/// Discards everything.
pub struct Quiet;

impl EventSink for Quiet {
    fn emit(&self, _: &Event) {}
}

/// One JSON object per line on stdout: stable, greppable, for CI.
pub struct JsonLines;

impl EventSink for JsonLines {
    fn emit(&self, event: &Event) {
        if let Ok(line) = serde_json::to_string(event) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
        }
    }
}

/// Keeps every event, for tests.
#[derive(Default)]
pub struct Recorder(Mutex<Vec<Event>>);

impl Recorder {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl EventSink for Recorder {
    fn emit(&self, event: &Event) {
        if let Ok(mut e) = self.0.lock() {
            e.push(event.clone());
        }
    }
}

/// indicatif bars: one for the run, a spinner per action in flight.
pub struct Progress {
    multi: MultiProgress,
    overall: Mutex<Option<ProgressBar>>,
    spinners: Mutex<HashMap<String, ProgressBar>>,
}

impl Progress {
    pub fn new() -> Self {
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            overall: Mutex::new(None),
            spinners: Mutex::new(HashMap::new()),
        }
    }

    fn line(&self, text: String) {
        let _ = self.multi.println(text);
    }

    fn tick_overall(&self) {
        if let Ok(o) = self.overall.lock()
            && let Some(bar) = o.as_ref()
        {
            bar.inc(1);
        }
    }

    fn end_spinner(&self, key: &str) {
        if let Ok(mut s) = self.spinners.lock()
            && let Some(bar) = s.remove(key)
        {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl EventSink for Progress {
    fn emit(&self, event: &Event) {
        match event {
            Event::RunStarted { steps, .. } => {
                let bar = self.multi.add(ProgressBar::new(*steps as u64));
                bar.set_style(
                    ProgressStyle::with_template("{elapsed_precise} [{bar:30.cyan/blue}] {pos}/{len} actions")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                if let Ok(mut o) = self.overall.lock() {
                    *o = Some(bar);
                }
            }
            Event::StepStarted { address, op, .. } => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("  {spinner} {msg} ({elapsed})")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_message(format!("{op} {address}"));
                bar.enable_steady_tick(Duration::from_millis(120));
                if let Ok(mut s) = self.spinners.lock() {
                    s.insert(format!("{op} {address}"), bar);
                }
            }
            Event::StepRetrying { address, op, error, delay_ms, .. } => {
                self.line(format!("  ↻ {op} {address}: {error}; retrying in {delay_ms} ms"));
            }
            Event::StepSucceeded { address, op, elapsed_ms, .. } => {
                self.end_spinner(&format!("{op} {address}"));
                self.tick_overall();
                self.line(format!("  ✓ {op} {address} ({:.1}s)", *elapsed_ms as f64 / 1000.0));
            }
            Event::StepFailed { address, op, error, .. } => {
                self.end_spinner(&format!("{op} {address}"));
                self.tick_overall();
                self.line(format!("  ✗ {op} {address}: {error}"));
            }
            Event::StepSkipped { address, op, because, .. } => {
                self.tick_overall();
                self.line(format!("  ⊘ {op} {address} skipped: {because}"));
            }
            Event::StepInterrupted { address, op, why, .. } => {
                self.end_spinner(&format!("{op} {address}"));
                self.tick_overall();
                self.line(format!("  ■ {op} {address} interrupted: {why}"));
            }
            Event::Interrupted { in_flight } => {
                self.line(format!(
                    "  Interrupted: starting nothing new; {in_flight} action(s) in flight stop between attempts, \
                     or within {}s if a call is in flight…",
                    super::step::GRACE.as_secs()
                ));
            }
            Event::WaveStarted { wave, placements, changes } => {
                self.line(format!("Wave {wave} ({}): {changes} change(s)", placements.join(", ")));
            }
            Event::Soaking { wave, soak_ms } => {
                self.line(format!(
                    "  wave {wave} done; soaking {} before its gate",
                    humantime::format_duration(Duration::from_millis(*soak_ms))
                ));
            }
            Event::GateRead { placement, passed: true, .. } => self.line(format!("  ✓ gate {placement}")),
            Event::GateRead { placement, saw, .. } => self.line(format!("  ✗ gate {placement}: {}", saw.join("; "))),
            Event::RolloutHalted { wave, reason } => self.line(format!("  Rollout halted at wave {wave}: {reason}")),
            Event::RunFinished { .. } => {
                if let Ok(mut o) = self.overall.lock()
                    && let Some(bar) = o.take()
                {
                    bar.finish_and_clear();
                }
            }
        }
    }
}
