//! One step: journal the intent, call the provider (with retries, inside a timeout), commit the
//! outcome.
//!
//! ## Stopping
//!
//! When the run is stopped (Ctrl-C, SIGTERM), a step between attempts (in a backoff sleep) stops
//! at once: its last attempt failed, so the intent is closed as failed, exactly as if its retries
//! had run out, and the step is reported *interrupted*. A step whose call is in flight is given
//! [`GRACE`] to finish (and commit what it made); if it is still running then, it is dropped and
//! its intent left open, because the cloud may have acted: recovery resolves it before the next
//! plan, as after a crash.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tessera_provider_api::{Observed, Provider, ProviderError, ProviderExt};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Event, EventSink, StepKind};
use crate::plan::Action;
use crate::retry::{Reachability, RetryPolicy};
use crate::state::{IntentOp, Lease, NewIntent, Outcome, ResourceRecord, StateStore};

pub(super) struct StepCtx {
    pub index: usize,
    pub kind: StepKind,
    pub action: Action,
    pub provider: Arc<dyn Provider>,
    /// Where the step acts (for a delete, the provider the object was made with).
    pub provider_ref: tessera_provider_api::ProviderRef,
    pub store: Arc<dyn StateStore>,
    pub lease: Lease,
    pub run_id: String,
    pub retry: RetryPolicy,
    pub timeout: Duration,
    pub events: Arc<dyn EventSink>,
    /// The run's stop signal.
    pub cancel: watch::Receiver<bool>,
    /// Shared by every step that talks to the same server (see `crate::retry`).
    pub reach: Reachability,
    /// The rollout wave, for the events.
    pub wave: Option<usize>,
}

/// How long a cloud call in flight may go on once the run is stopped. Under the 10 s in which a
/// stopped run must have ended, leaving time to commit and release the lease.
pub const GRACE: Duration = Duration::from_secs(5);

pub(super) struct StepDone {
    pub index: usize,
    pub retries: u64,
    /// What the object now is (creates and updates), for the references of later steps.
    pub result: Result<Option<Observed>, Ended>,
}

/// How a step that did not succeed ended.
pub(super) enum Ended {
    Failed(String),
    /// Stopped by the run's stop signal (see the module docs).
    Interrupted(String),
}

enum Called {
    Made(Observed),
    Gone,
}

pub(super) async fn run(ctx: StepCtx) -> StepDone {
    let retries = AtomicU64::new(0);
    let result = run_inner(&ctx, &retries).await;
    StepDone { index: ctx.index, retries: retries.load(Ordering::Relaxed), result }
}

async fn run_inner(ctx: &StepCtx, retries: &AtomicU64) -> Result<Option<Observed>, Ended> {
    let started = Instant::now();
    let address = ctx.action.address.to_string();
    let placement = ctx.action.address.placement.clone();
    let wave = ctx.wave;
    let op = ctx.kind.verb().to_string();
    let fail = |error: String| {
        ctx.events.emit(&Event::StepFailed {
            address: address.clone(),
            placement: placement.clone(),
            wave,
            op: op.clone(),
            error: error.clone(),
        });
        Err(Ended::Failed(error))
    };
    let stopped = |why: String| {
        ctx.events.emit(&Event::StepInterrupted {
            address: address.clone(),
            placement: placement.clone(),
            wave,
            op: op.clone(),
            why: why.clone(),
        });
        Err(Ended::Interrupted(why))
    };

    let (intent_op, acted_on) = match ctx.kind {
        StepKind::Create => (IntentOp::Create, None),
        StepKind::Update => (IntentOp::Update, ctx.action.prior.as_ref().map(|p| p.id.clone())),
        StepKind::Replace => (IntentOp::Replace, ctx.action.prior.as_ref().map(|p| p.id.clone())),
        StepKind::Delete => (IntentOp::Delete, ctx.action.prior.as_ref().map(|p| p.id.clone())),
    };
    let new_intent = NewIntent {
        run_id: &ctx.run_id,
        address: &ctx.action.address,
        op: intent_op,
        cloud_id: acted_on.as_deref(),
        provider: &ctx.provider_ref,
        desired: ctx.action.desired.as_ref().filter(|_| ctx.kind != StepKind::Delete),
    };
    let intent = match ctx.store.open_intent(&ctx.lease, &new_intent).await {
        Ok(id) => id,
        Err(e) => return fail(format!("state: {e}")),
    };

    // Whether an attempt is in flight (rather than the step sleeping before the next one).
    let (busy_tx, busy_rx) = watch::channel(false);
    let go_on = || !*ctx.cancel.borrow();
    let last_error = std::sync::Mutex::new(String::new());
    let call = ctx.retry.run_shared(
        || {
            let busy = &busy_tx;
            async move {
                busy.send_replace(true);
                let r = call_provider(ctx).await;
                busy.send_replace(false);
                r
            }
        },
        |e: &ProviderError, delay: Duration| {
            retries.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut last) = last_error.lock() {
                *last = e.to_string();
            }
            ctx.events.emit(&Event::StepRetrying {
                address: address.clone(),
                placement: placement.clone(),
                wave,
                op: op.clone(),
                error: e.to_string(),
                delay_ms: delay.as_millis() as u64,
            });
        },
        &ctx.reach,
        &go_on,
    );
    let mut interrupted_in_backoff = false;
    let called = tokio::select! {
        // A call that ends within the grace period is committed as usual.
        biased;
        r = tokio::time::timeout(ctx.timeout, call) => match r {
            Ok(r) => r,
            // The cloud may or may not have acted: leave the intent open for recovery to resolve.
            Err(_) => {
                return fail(format!(
                    "timed out after {}; outcome unknown, intent {intent} left open",
                    humantime::format_duration(ctx.timeout)
                ));
            }
        },
        in_flight = stop_point(ctx.cancel.clone(), busy_rx) => {
            if in_flight {
                return stopped(format!(
                    "stopped with its call in flight after the {}s grace period; outcome unknown, \
                     intent {intent} left open for recovery",
                    GRACE.as_secs()
                ));
            }
            interrupted_in_backoff = true;
            let last = last_error.lock().map(|l| l.clone()).unwrap_or_default();
            Err(ProviderError::Fatal(format!("stopped while waiting to retry; the last attempt failed: {last}")))
        }
    };
    let outcome = match (&called, ctx.kind) {
        (Ok(Called::Made(obs)), StepKind::Replace) => Outcome::Replaced(record(ctx, obs)),
        (Ok(Called::Made(obs)), _) => Outcome::Current(record(ctx, obs)),
        (Ok(Called::Gone), _) => match &ctx.action.prior {
            Some(p) => Outcome::Deleted { address: ctx.action.address.clone(), id: p.id.clone() },
            None => Outcome::Failed { message: "delete without a recorded object".into() },
        },
        (Err(e), _) => Outcome::Failed { message: e.to_string() },
    };
    let id = match &outcome {
        Outcome::Current(r) | Outcome::Replaced(r) => r.id.clone(),
        Outcome::Deleted { id, .. } => id.clone(),
        Outcome::Failed { .. } => String::new(),
    };
    if let Err(e) = ctx.store.commit(&ctx.lease, intent, outcome).await {
        return fail(format!("the cloud call finished but state could not record it: {e}"));
    }
    // A stopped step whose last attempt failed (in backoff, or ending within the grace period
    // with an error that would have been retried) is not finished rather than failed.
    let retryable = matches!(&called, Err(e) if e.is_retryable());
    if interrupted_in_backoff || (retryable && *ctx.cancel.borrow()) {
        let why = match &called {
            Err(e) if !interrupted_in_backoff => format!("stopped before retrying: {e}"),
            Err(e) => e.to_string(),
            Ok(_) => String::new(),
        };
        return stopped(format!("{why}; not finished, intent {intent} closed as failed"));
    }
    match called {
        Ok(called) => {
            ctx.events.emit(&Event::StepSucceeded {
                address,
                placement,
                wave,
                op,
                id,
                elapsed_ms: started.elapsed().as_millis() as u64,
            });
            Ok(match called {
                Called::Made(obs) => Some(obs),
                Called::Gone => None,
            })
        }
        Err(e) => fail(e.to_string()),
    }
}

/// Resolves once the run is stopped and no attempt is in flight, or the grace period for the
/// attempt in flight has passed; says which. Never resolves if the run is not stopped.
async fn stop_point(mut cancel: watch::Receiver<bool>, mut busy: watch::Receiver<bool>) -> bool {
    if cancel.wait_for(|stop| *stop).await.is_err() {
        // The signal's sender is gone: nobody can stop this run any more.
        std::future::pending::<()>().await;
    }
    tokio::time::timeout(GRACE, busy.wait_for(|b| !*b)).await.is_err()
}

async fn call_provider(ctx: &StepCtx) -> Result<Called, ProviderError> {
    let a = &ctx.action;
    let missing = || ProviderError::Fatal(format!("plan action for {} is incomplete", a.address));
    match ctx.kind {
        StepKind::Create | StepKind::Replace => {
            let desired = a.desired.as_ref().ok_or_else(missing)?;
            ctx.provider.create(desired).await.map(Called::Made)
        }
        StepKind::Update => {
            let desired = a.desired.as_ref().ok_or_else(missing)?;
            let prior = a.prior.as_ref().ok_or_else(missing)?;
            let fields: Vec<String> = a.changes.iter().map(|c| c.field.clone()).collect();
            ctx.provider.update(desired, &prior.id, &fields).await.map(Called::Made)
        }
        StepKind::Delete => {
            let prior = a.prior.as_ref().ok_or_else(missing)?;
            match ctx.provider.delete(&a.address, &prior.id).await {
                // Already gone is what we wanted: deletes are idempotent.
                Ok(()) | Err(ProviderError::NotFound(_)) => Ok(Called::Gone),
                Err(e) => Err(e),
            }
        }
    }
}

fn record(ctx: &StepCtx, obs: &Observed) -> ResourceRecord {
    let desired = ctx.action.desired.as_ref();
    ResourceRecord {
        address: ctx.action.address.clone(),
        provider: ctx.action.provider.clone(),
        id: obs.id.clone(),
        status: obs.status.clone(),
        attrs: obs.attrs.clone(),
        deps: desired.map(|d| d.deps.clone()).unwrap_or_default(),
        deposed: false,
        // What was made is what the schema the plan was made for describes.
        schema_version: desired.map_or(1, |d| d.schema_version),
    }
}
