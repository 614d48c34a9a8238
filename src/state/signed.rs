//! ## Overview
//!
//! [`SignedAuditStore`]: a state store whose audit records are signed by the pipeline. It wraps
//! any backend and passes every call through, except that each appended audit record is sealed
//! into a [`SignedEntry`](super::audit::SignedEntry) over the previous head, inside the backend's
//! own fenced transaction. `tessera pipeline apply` hands the engine this store, so the engine
//! appends records as always and never holds the key.

use std::sync::Arc;

use async_trait::async_trait;

use super::audit::AuditSigner;
use super::*;

pub struct SignedAuditStore {
    inner: Arc<dyn StateStore>,
    signer: AuditSigner,
}

impl SignedAuditStore {
    pub fn new(inner: Arc<dyn StateStore>, signer: AuditSigner) -> Self {
        Self { inner, signer }
    }
}

#[async_trait]
impl StateStore for SignedAuditStore {
    async fn meta(&self) -> Result<StateMeta, StateError> {
        self.inner.meta().await
    }
    async fn bind_fleet(&self, fleet: &str) -> Result<(), StateError> {
        self.inner.bind_fleet(fleet).await
    }
    async fn resources(&self) -> Result<Vec<ResourceRecord>, StateError> {
        self.inner.resources().await
    }
    async fn lock(&self, holder: &str, command: &str, ttl_secs: u64) -> Result<Lease, StateError> {
        self.inner.lock(holder, command, ttl_secs).await
    }
    async fn renew(&self, lease: &Lease, ttl_secs: u64) -> Result<Lease, StateError> {
        self.inner.renew(lease, ttl_secs).await
    }
    async fn unlock(&self, lease: &Lease) -> Result<(), StateError> {
        self.inner.unlock(lease).await
    }
    async fn force_unlock(&self, lock_id: &str, by: &str) -> Result<(), StateError> {
        self.inner.force_unlock(lock_id, by).await
    }
    async fn open_intent(&self, lease: &Lease, intent: &NewIntent<'_>) -> Result<i64, StateError> {
        self.inner.open_intent(lease, intent).await
    }
    async fn commit(&self, lease: &Lease, intent: i64, outcome: Outcome) -> Result<u64, StateError> {
        self.inner.commit(lease, intent, outcome).await
    }
    async fn open_intents(&self) -> Result<Vec<Intent>, StateError> {
        self.inner.open_intents().await
    }
    async fn rollout(&self) -> Result<RolloutRecord, StateError> {
        self.inner.rollout().await
    }
    async fn set_rollout(&self, lease: &Lease, record: &RolloutRecord, change: &str) -> Result<(), StateError> {
        self.inner.set_rollout(lease, record, change).await
    }
    async fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, StateError> {
        self.inner.history(limit).await
    }
    async fn claim_plan(&self, lease: &Lease, digest: &str) -> Result<bool, StateError> {
        self.inner.claim_plan(lease, digest).await
    }
    async fn is_plan_applied(&self, digest: &str) -> Result<bool, StateError> {
        self.inner.is_plan_applied(digest).await
    }
    async fn append_audit(&self, lease: &Lease, record: &str) -> Result<String, StateError> {
        self.inner.append_audit_with(lease, &|prev: &str| self.signer.entry(prev, record, None)).await
    }
    /// `make`'s record becomes the signed body.
    async fn append_audit_with(&self, lease: &Lease, make: &RecordMaker<'_>) -> Result<String, StateError> {
        self.inner.append_audit_with(lease, &|prev: &str| self.signer.entry(prev, &make(prev), None)).await
    }
    async fn audit_log(&self) -> Result<(Vec<AuditRow>, Option<String>), StateError> {
        self.inner.audit_log().await
    }
    async fn bound_policy(&self) -> Result<Option<BoundPolicy>, StateError> {
        self.inner.bound_policy().await
    }
    async fn bind_policy(&self, policy: &BoundPolicy) -> Result<BoundPolicy, StateError> {
        self.inner.bind_policy(policy).await
    }
    /// Passed through as it is: a policy change's record names the next key, so the caller signs it.
    async fn change_policy(
        &self,
        lease: &Lease,
        claim: &str,
        from: &str,
        to: &BoundPolicy,
        make: &RecordMaker<'_>,
    ) -> Result<Option<String>, StateError> {
        self.inner.change_policy(lease, claim, from, to, make).await
    }
}
