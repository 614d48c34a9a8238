//! One step: journal the intent, call the provider (with retries, inside a timeout), commit the
//! outcome.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tessera_provider_api::{Observed, Provider, ProviderError};
use tokio::time::Instant;

use super::{Event, EventSink, StepKind};
use crate::plan::Action;
use crate::retry::RetryPolicy;
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
}

pub(super) struct StepDone {
    pub index: usize,
    pub retries: u64,
    /// What the object now is (creates and updates), for the references of later steps.
    pub result: Result<Option<Observed>, String>,
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

async fn run_inner(ctx: &StepCtx, retries: &AtomicU64) -> Result<Option<Observed>, String> {
    let started = Instant::now();
    let address = ctx.action.address.to_string();
    let op = ctx.kind.verb().to_string();
    let fail = |error: String| {
        ctx.events.emit(&Event::StepFailed { address: address.clone(), op: op.clone(), error: error.clone() });
        Err(error)
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

    let call = ctx.retry.run(
        || call_provider(ctx),
        |e: &ProviderError, delay: Duration| {
            retries.fetch_add(1, Ordering::Relaxed);
            ctx.events.emit(&Event::StepRetrying {
                address: address.clone(),
                op: op.clone(),
                error: e.to_string(),
                delay_ms: delay.as_millis() as u64,
            });
        },
    );
    let called = match tokio::time::timeout(ctx.timeout, call).await {
        Ok(r) => r,
        // The cloud may or may not have acted: leave the intent open for recovery to resolve.
        Err(_) => {
            return fail(format!(
                "timed out after {}; outcome unknown, intent {intent} left open",
                humantime::format_duration(ctx.timeout)
            ));
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
    match called {
        Ok(called) => {
            ctx.events.emit(&Event::StepSucceeded {
                address,
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
            match ctx.provider.delete(&a.address.rtype, &prior.id).await {
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
    }
}
