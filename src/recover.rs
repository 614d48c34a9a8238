//! Resolving intents that a crashed run left open, by reading the cloud.
//!
//! An open intent is a mutation that was sent (or about to be) whose outcome state never
//! recorded. Each is settled by looking at what actually exists:
//! - create / replace: the provider looks for the object by its ownership tags, idempotency
//!   token or name; found → adopted as the address's current object (a replacement deposes the
//!   old one), not found → the intent is closed as "never happened";
//! - update: the object is re-read and its live attributes recorded (or its absence);
//! - delete: gone → the record is removed; still there → the record stays, and the next plan
//!   deletes it again.
//!
//! After recovery, state matches the cloud, so the next plan neither duplicates nor orphans.

use std::collections::HashMap;

use serde::Serialize;
use tessera_provider_api::{Address, Connection, Observed, ProviderError, ProviderExt};

use crate::providers::{Registry, UnknownProvider};
use crate::retry::RetryPolicy;
use crate::state::{Intent, IntentOp, Lease, Outcome, ResourceRecord, StateError, StateStore};

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Recovered {
    /// Objects found in the cloud and recorded.
    pub adopted: Vec<String>,
    /// Mutations that turned out never to have happened.
    pub absent: Vec<String>,
    /// Deletions confirmed (or objects found gone).
    pub deleted: Vec<String>,
}

impl Recovered {
    pub fn is_empty(&self) -> bool {
        self.adopted.is_empty() && self.absent.is_empty() && self.deleted.is_empty()
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RecoverError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Provider(#[from] UnknownProvider),
    #[error("recovering {address}: {error}")]
    #[diagnostic(
        code(tessera::recover),
        help("the cloud could not be read; nothing was changed, run again when it answers")
    )]
    Cloud { address: Address, error: ProviderError },
}

pub async fn recover(
    store: &dyn StateStore,
    registry: &Registry,
    lease: &Lease,
    retry: &RetryPolicy,
) -> Result<Recovered, RecoverError> {
    let intents = store.open_intents().await?;
    if intents.is_empty() {
        return Ok(Recovered::default());
    }
    let records: HashMap<(Address, String), ResourceRecord> =
        store.resources().await?.into_iter().map(|r| ((r.address.clone(), r.id.clone()), r)).collect();
    // A connected provider reaches its objects through its source's current outputs.
    let sources: HashMap<Address, Observed> =
        records.values().filter(|r| !r.deposed).map(|r| (r.address.clone(), r.observed())).collect();
    let mut out = Recovered::default();
    for intent in intents {
        let outcome = settle(&intent, &records, &sources, registry, retry).await?;
        let label = format!("{} {}", op_name(intent.op), intent.address);
        match &outcome {
            Outcome::Current(_) | Outcome::Replaced(_) => out.adopted.push(label),
            Outcome::Deleted { .. } => out.deleted.push(label),
            Outcome::Failed { .. } => out.absent.push(label),
        }
        store.commit(lease, intent.id, outcome).await?;
    }
    Ok(out)
}

fn op_name(op: IntentOp) -> &'static str {
    match op {
        IntentOp::Create => "create",
        IntentOp::Update => "update",
        IntentOp::Replace => "replace",
        IntentOp::Delete => "delete",
    }
}

async fn settle(
    intent: &Intent,
    records: &HashMap<(Address, String), ResourceRecord>,
    sources: &HashMap<Address, Observed>,
    registry: &Registry,
    retry: &RetryPolicy,
) -> Result<Outcome, RecoverError> {
    let provider = match &intent.provider.connection {
        None => registry.for_placement(&intent.provider, &intent.address.placement)?,
        Some(source) => {
            let Some(obs) = sources.get(source) else {
                return Ok(Outcome::Failed {
                    message: format!("recovered: its connection source {source} is not recorded, so it cannot exist"),
                });
            };
            let conn = Connection { source: source.clone(), id: obs.id.clone(), outputs: obs.attrs.clone() };
            registry.connect_for(&intent.provider, &conn, &intent.address.placement)?
        }
    };
    let cloud = |error| RecoverError::Cloud { address: intent.address.clone(), error };
    let record = |obs: Observed, deps: Vec<Address>| ResourceRecord {
        address: intent.address.clone(),
        provider: intent.provider.clone(),
        id: obs.id,
        status: obs.status,
        attrs: obs.attrs,
        deps,
        deposed: false,
        schema_version: intent.desired.as_ref().map_or(1, |d| d.schema_version),
    };
    let absent = |why: &str| Outcome::Failed { message: format!("recovered: {why}") };
    Ok(match (intent.op, &intent.desired, &intent.cloud_id) {
        (IntentOp::Create | IntentOp::Replace, Some(desired), _) => {
            match retry.run(|| provider.find(desired), |_, _| {}).await.map_err(cloud)? {
                // A replacement that found only the object it was replacing made nothing new.
                Some(obs) if Some(&obs.id) == intent.cloud_id.as_ref() => absent("the replacement was never created"),
                Some(obs) if intent.op == IntentOp::Replace => Outcome::Replaced(record(obs, desired.deps.clone())),
                Some(obs) => Outcome::Current(record(obs, desired.deps.clone())),
                None => absent("it was never created"),
            }
        }
        (IntentOp::Update | IntentOp::Delete, _, Some(id)) => {
            let rtype = intent.address.rtype.clone();
            let known = records.get(&(intent.address.clone(), id.clone()));
            let recorded = known.map(|r| r.attrs.clone()).unwrap_or_default();
            let live = match retry.run(|| provider.read_recorded(&rtype, id, &recorded), |_, _| {}).await {
                Ok(live) => live,
                Err(ProviderError::NotFound(_)) => None,
                Err(e) => return Err(cloud(e)),
            };
            match (live, intent.op) {
                (None, _) => Outcome::Deleted { address: intent.address.clone(), id: id.clone() },
                (Some(_), IntentOp::Delete) => absent("it still exists"),
                (Some(obs), _) => match known {
                    Some(rec) => {
                        Outcome::Current(ResourceRecord { status: obs.status, attrs: obs.attrs, ..rec.clone() })
                    }
                    None => absent("no record to refresh"),
                },
            }
        }
        _ => absent("the intent carried too little to resolve it"),
    })
}
