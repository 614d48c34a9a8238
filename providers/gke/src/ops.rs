//! Operations: one at a time per cluster, each polled until `DONE`.
//!
//! ## Overview
//!
//! Every mutating GKE method answers with an `Operation` whose `name` is a bare id; its state is
//! read with `operations.get` on `projects/P/locations/L/operations/ID`, polled through the
//! shared poller until `status` is `DONE`, and then `error` says whether it worked.
//!
//! GKE runs one operation per cluster at a time (a second gets 400 `FAILED_PRECONDITION`), so
//! `GkeProvider::mutate` holds the cluster's [`Serial`](tessera_provider_api::serial::Serial) lock from
//! the request that starts an operation until the poll that sees it end: the pools of one
//! cluster, which the engine runs concurrently, take turns instead of colliding. A conflict the
//! lock cannot see (another tool, the console, a second Tessera) is retried inside the lock,
//! with backoff, until the other operation ends; `RESOURCE_EXHAUSTED` (the project's limit of
//! concurrent operations) and `UNAVAILABLE` likewise.

use std::future::Future;

use google_cloud_container_v1::model::Operation;
use google_cloud_container_v1::model::operation::Status;
use google_cloud_gax::error::rpc::Code;
use tessera_provider_api::ProviderError;
use tessera_provider_api::poll::{Seen, until};

use crate::GkeProvider;
use crate::error::{code, gcp, operation_error};

/// What a mutating call came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The operation ran to `DONE` without error.
    Done,
    /// The object already exists (`ALREADY_EXISTS`): the caller decides whether it is its own.
    AlreadyExists,
}

/// `projects/P/locations/L` of a cluster or node pool id.
pub fn parent_location(id: &str) -> Result<&str, ProviderError> {
    let mut slashes = id.match_indices('/').map(|(i, _)| i);
    let end = slashes.nth(3).unwrap_or(id.len());
    let parent = &id[..end];
    if parent.starts_with("projects/")
        && parent.split('/').nth(2) == Some("locations")
        && parent.split('/').count() == 4
    {
        Ok(parent)
    } else {
        Err(ProviderError::Fatal(format!("`{id}` is not a GKE resource name (projects/P/locations/L/...)")))
    }
}

/// The cluster id of a cluster or node pool id.
pub fn cluster_of(id: &str) -> &str {
    id.split("/nodePools/").next().unwrap_or(id)
}

impl GkeProvider {
    /// Starts an operation on `cluster` with `call` and waits until it is `DONE`, holding the
    /// cluster's lock throughout (see the module docs).
    pub(crate) async fn mutate<F, Fut>(&self, cluster: &str, what: &str, call: F) -> Result<Outcome, ProviderError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Operation, google_cloud_gax::error::Error>>,
    {
        let _held = self.serial.lock(cluster).await;
        let started = until(&self.poll, what, || async {
            match call().await {
                Ok(op) => Ok(Seen::Done(Some(op))),
                Err(e) if code(&e) == Some(Code::AlreadyExists) => Ok(Seen::Done(None)),
                Err(e) => {
                    let err = gcp(what, e);
                    if err.is_retryable() {
                        tracing::debug!("{err}; retrying");
                    }
                    Err(err)
                }
            }
        })
        .await?;
        let Some(op) = started else { return Ok(Outcome::AlreadyExists) };
        self.wait(parent_location(cluster)?, op, what).await?;
        Ok(Outcome::Done)
    }

    /// Polls `op` until `DONE`, then reads its `error`.
    async fn wait(&self, parent: &str, op: Operation, what: &str) -> Result<(), ProviderError> {
        let name = if op.name.contains('/') { op.name.clone() } else { format!("{parent}/operations/{}", op.name) };
        let first = op;
        let mut first = Some(first);
        let done = until(&self.poll, &format!("{what} (operation {name})"), || {
            let seen = first.take();
            let name = name.clone();
            async move {
                let op = match seen {
                    Some(op) => op,
                    None => {
                        let client = self.client().await?;
                        client.get_operation().set_name(&name).send().await.map_err(|e| gcp("operations.get", e))?
                    }
                };
                if op.status == Status::Done {
                    Ok(Seen::Done(op))
                } else {
                    Ok(Seen::Pending(op.status.name().unwrap_or("PENDING").to_string()))
                }
            }
        })
        .await?;
        match &done.error {
            Some(status) if status.code != 0 => Err(operation_error(what, status)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_their_parents() {
        let pool = "projects/p-123456/locations/europe-west4/clusters/c/nodePools/system-ab12cd";
        assert_eq!(parent_location(pool).unwrap(), "projects/p-123456/locations/europe-west4");
        assert_eq!(cluster_of(pool), "projects/p-123456/locations/europe-west4/clusters/c");
        assert!(parent_location("clusters/c").is_err());
    }
}
