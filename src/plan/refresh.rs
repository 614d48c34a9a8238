//! Refresh: reading what state recorded from the clouds, within each provider's in-flight budget.
//!
//! A read that fails is kept as [`Read::Failed`] for the plan to report against that resource:
//! one unreachable placement must not hide the plan of the others. A lost read is never taken
//! for a deleted resource, or the plan would create it again. The reads through one cluster's
//! API share a [`Reachability`]: an API that stays unreachable costs the plan one retry bound,
//! not one per object inside the cluster.

use std::collections::BTreeMap;

use tessera_provider_api::{Address, Attrs, Connection, Observed, Provider, ProviderError, ProviderExt};
use tokio::task::JoinSet;

use super::PlanError;
use crate::providers::Registry;
use crate::retry::{Reachability, RetryPolicy};
use crate::state::ResourceRecord;

/// What a refresh learned of one recorded object.
#[derive(Debug, Clone)]
pub(super) enum Read {
    Found(Observed),
    Gone,
    Failed(String),
    /// Not read: its connection source does not exist yet.
    Deferred,
}

impl Read {
    fn from(result: Result<Option<Observed>, ProviderError>) -> Self {
        match result {
            Ok(Some(obs)) => Self::Found(obs),
            Ok(None) | Err(ProviderError::NotFound(_)) => Self::Gone,
            Err(e) => Self::Failed(e.to_string()),
        }
    }
}

/// Reads every current recorded object whose provider needs no connection, concurrently.
pub(super) async fn direct(
    records: &[ResourceRecord],
    registry: &Registry,
    retry: &RetryPolicy,
) -> Result<BTreeMap<Address, Read>, PlanError> {
    let mut reads = JoinSet::new();
    for rec in records.iter().filter(|r| !r.deposed && r.provider.connection.is_none()) {
        let provider = registry.get(&rec.provider)?;
        let budget = registry.budget(&rec.provider)?;
        let (address, id, recorded, retry) = (rec.address.clone(), rec.id.clone(), rec.attrs.clone(), retry.clone());
        reads.spawn(async move {
            let reach = Reachability::default();
            let result = read(provider.as_ref(), &address, &id, &recorded, &retry, Some(&budget), &reach).await;
            (address, result)
        });
    }
    let mut live = BTreeMap::new();
    while let Some(joined) = reads.join_next().await {
        match joined {
            Ok((address, result)) => {
                live.insert(address, Read::from(result));
            }
            // The task's address is lost with it; the resource then reads as failed below.
            Err(e) => tracing::error!("a refresh task failed: {e}"),
        }
    }
    for rec in records.iter().filter(|r| !r.deposed && r.provider.connection.is_none()) {
        live.entry(rec.address.clone()).or_insert_with(|| Read::Failed("the read was lost".into()));
    }
    Ok(live)
}

/// Reads one object through the connection its source provides.
pub(super) async fn connected(
    rec: &ResourceRecord,
    source: &Address,
    source_obs: Option<Observed>,
    registry: &Registry,
    retry: &RetryPolicy,
    reach: &Reachability,
) -> Result<Read, PlanError> {
    let Some(obs) = source_obs else {
        return Ok(Read::Failed(format!("its connection source {source} is not recorded")));
    };
    let conn = Connection { source: source.clone(), id: obs.id, outputs: obs.attrs };
    let provider = registry.connect(&rec.provider, &conn)?;
    Ok(Read::from(read(provider.as_ref(), &rec.address, &rec.id, &rec.attrs, retry, None, reach).await))
}

async fn read(
    provider: &dyn Provider,
    address: &Address,
    id: &str,
    recorded: &Attrs,
    retry: &RetryPolicy,
    budget: Option<&tokio::sync::Semaphore>,
    reach: &Reachability,
) -> Result<Option<Observed>, ProviderError> {
    let id = id.to_string();
    retry
        .run_shared(
            || async {
                let _permit = match budget {
                    Some(b) => b.acquire().await.ok(),
                    None => None,
                };
                provider.read_recorded(&address.rtype, &id, recorded).await
            },
            |_, _| {},
            reach,
            &|| true,
        )
        .await
}
