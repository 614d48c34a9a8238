//! The simulated cloud itself: resources with lifecycle statuses, latency on tokio's clock,
//! throttling and fault injection, and a "console" for out-of-band edits.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tessera_provider_api::{Attrs, CloudId, Observed, ProviderError, ResourceSpec};
use tokio::time::Instant;

use crate::kube_record;
use crate::store::{SimResource, Store, StoreError, now_ms};

/// How the cloud misbehaves. All randomness is seeded, so a failing test replays exactly.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Probability that any call is answered with a throttling error before it does anything.
    pub throttle_rate: f64,
    /// Probability that a mutating call fails fatally before it does anything.
    pub failure_rate: f64,
    /// Addresses whose create or update always fails fatally, as a cloud's validation would.
    pub fail_addresses: BTreeSet<String>,
    /// Probability that a mutating call *takes effect* and then its answer is lost (a 503, as a
    /// dropped connection or a gateway timeout gives): the retry must find what the call did.
    pub lost_response_rate: f64,
    /// Every cluster's Kubernetes API refuses connections (a firewall, a private endpoint seen
    /// from outside its network), while the cloud's own API answers.
    pub kube_unreachable: bool,
    pub seed: u64,
}

/// One call the cloud served, for tests that check ordering and concurrency.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    pub op: &'static str,
    pub id: CloudId,
    pub address: String,
    pub started: Duration,
    pub finished: Duration,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallStats {
    pub reads: u64,
    pub creates: u64,
    pub updates: u64,
    pub deletes: u64,
    pub throttled: u64,
    pub failed: u64,
    /// Mutations that took effect and whose answers were lost.
    pub lost_responses: u64,
}

struct Inner {
    store: Store,
    /// Addresses whose reads fail as an unreachable cloud's would (see [`SimCloud::set_unreadable`]).
    unreadable: BTreeSet<String>,
    /// Placements whose nodes go unready once upgraded (see
    /// [`SimCloud::set_unhealthy_after_upgrade`]).
    unhealthy_after_upgrade: BTreeSet<String>,
    rng: SmallRng,
    log: Vec<CallRecord>,
    stats: CallStats,
}

pub struct SimCloud {
    inner: Mutex<Inner>,
    faults: Faults,
    epoch: Instant,
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no resource tagged with address `{0}` in the sim cloud")]
    NoSuchAddress(String),
}

impl SimCloud {
    pub fn in_memory(faults: Faults) -> Self {
        Self::with_store(Store::memory(), faults)
    }

    /// A cloud kept in a SQLite file, shared by every process that opens the same path.
    pub fn durable(path: &Path, faults: Faults) -> Result<Self, SimError> {
        Ok(Self::with_store(Store::open(path)?, faults))
    }

    fn with_store(store: Store, faults: Faults) -> Self {
        let rng = SmallRng::seed_from_u64(faults.seed);
        Self {
            inner: Mutex::new(Inner {
                store,
                unreadable: BTreeSet::new(),
                unhealthy_after_upgrade: BTreeSet::new(),
                rng,
                log: Vec::new(),
                stats: CallStats::default(),
            }),
            faults,
            epoch: Instant::now(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the store half-written (each store call is
        // one statement), so a poisoned lock is safe to keep using.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn stats(&self) -> CallStats {
        self.lock().stats.clone()
    }

    pub fn calls(&self) -> Vec<CallRecord> {
        self.lock().log.clone()
    }

    pub fn resources(&self) -> Result<Vec<SimResource>, SimError> {
        Ok(self.lock().store.all()?)
    }

    pub fn find_by_address(&self, address: &str) -> Result<SimResource, SimError> {
        self.resources()?
            .into_iter()
            .find(|r| r.address_tag() == Some(address))
            .ok_or_else(|| SimError::NoSuchAddress(address.to_string()))
    }

    /// A change made in the cloud's console, outside Tessera: sets `field` on the resource
    /// tagged with `address`. Passing `Value::Null` removes the field.
    pub fn console_edit(&self, address: &str, field: &str, value: Value) -> Result<(), SimError> {
        let mut r = self.find_by_address(address)?;
        if value.is_null() {
            r.attrs.remove(field);
        } else {
            r.attrs.insert(field.to_string(), value);
        }
        self.lock().store.put(&r)?;
        Ok(())
    }

    /// The cloud sets a resource's lifecycle status by itself (a control plane that FAILED).
    pub fn console_set_status(&self, address: &str, status: &str) -> Result<(), SimError> {
        let mut r = self.find_by_address(address)?;
        r.status = status.to_string();
        self.lock().store.put(&r)?;
        Ok(())
    }

    /// From now on, reads of these addresses fail with a retryable error that never clears: a
    /// region or account that cannot be reached.
    pub fn set_unreadable(&self, addresses: &[&str]) {
        self.lock().unreadable = addresses.iter().map(|a| a.to_string()).collect();
    }

    /// Test-only (the CLI's rollout tests set it from `TESSERA_SIM_UNHEALTHY_AFTER_UPGRADE`):
    /// from now on, every node of a cluster in one of `placements` reports `ready: false` once
    /// that cluster's control plane or any of its node pools runs another Kubernetes `version`
    /// than the one it was created with, as a bad upgrade would leave it. A version put back
    /// makes it healthy again, and so does a replacement (a new resource starts from its own
    /// version). The setting is this process's: the durable store keeps each resource's created
    /// version, not this set, so every process that opens the cloud sets it again. An empty set
    /// turns it off.
    pub fn set_unhealthy_after_upgrade(&self, placements: BTreeSet<String>) {
        self.lock().unhealthy_after_upgrade = placements;
    }

    /// Whether the nodes of the cluster whose control plane is `cluster_id` and whose node pools
    /// are `pools` are unready by [`SimCloud::set_unhealthy_after_upgrade`]. Not a call to the
    /// cloud (no faults, no stats): the cluster's own state, as its kubelets would show it.
    pub(crate) fn unhealthy_after_upgrade(
        &self,
        cluster_id: &str,
        pools: &[SimResource],
    ) -> Result<bool, ProviderError> {
        let inner = self.lock();
        if inner.unhealthy_after_upgrade.is_empty() {
            return Ok(false);
        }
        let control_plane = inner.store.get(cluster_id).map_err(Self::store_err)?;
        let named = |r: &SimResource| r.placement().is_some_and(|p| inner.unhealthy_after_upgrade.contains(p));
        Ok(control_plane.iter().chain(pools).any(|r| named(r) && r.upgraded()))
    }

    /// A resource deleted in the console.
    pub fn console_delete(&self, address: &str) -> Result<(), SimError> {
        let r = self.find_by_address(address)?;
        self.lock().store.remove(&r.id)?;
        Ok(())
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    fn now(&self) -> Duration {
        Instant::now().duration_since(self.epoch)
    }

    /// Rolls the dice for throttling and random failures before a call has any effect.
    fn admit(&self, op: &'static str, address: &str, mutating: bool) -> Result<(), ProviderError> {
        let mut inner = self.lock();
        if self.faults.throttle_rate > 0.0 && inner.rng.random_bool(self.faults.throttle_rate.min(1.0)) {
            inner.stats.throttled += 1;
            return Err(ProviderError::throttled(format!("Rate exceeded ({op} {address})")));
        }
        if mutating {
            let injected = self.faults.fail_addresses.contains(address);
            if injected || (self.faults.failure_rate > 0.0 && inner.rng.random_bool(self.faults.failure_rate.min(1.0)))
            {
                inner.stats.failed += 1;
                return Err(ProviderError::Fatal(format!(
                    "InvalidParameterException: simulated failure of {op} for {address}"
                )));
            }
        }
        Ok(())
    }

    /// After a mutation took effect: its answer lost, sometimes.
    fn answer(&self, op: &'static str, address: &str) -> Result<(), ProviderError> {
        let mut inner = self.lock();
        if self.faults.lost_response_rate > 0.0 && inner.rng.random_bool(self.faults.lost_response_rate.min(1.0)) {
            inner.stats.lost_responses += 1;
            return Err(ProviderError::unavailable(format!(
                "504 Gateway Timeout ({op} {address}: the change was made, its answer lost)"
            )));
        }
        Ok(())
    }

    fn store_err(e: impl std::fmt::Display) -> ProviderError {
        ProviderError::Fatal(format!("sim cloud storage failed: {e}"))
    }

    fn record(&self, op: &'static str, id: &str, address: &str, started: Duration) {
        let finished = self.now();
        self.lock().log.push(CallRecord { op, id: id.into(), address: address.into(), started, finished });
    }

    pub(crate) async fn read(&self, id: &str) -> Result<Option<Observed>, ProviderError> {
        self.admit("read", id, false)?;
        let mut inner = self.lock();
        inner.stats.reads += 1;
        let found = inner.store.get(id).map_err(Self::store_err)?;
        if let Some(address) = found.as_ref().and_then(|r| r.address_tag()).filter(|a| inner.unreadable.contains(*a)) {
            return Err(ProviderError::unavailable(format!("503 Service Unavailable (reading {address})")));
        }
        Ok(found.map(|r| Observed { id: r.id, status: r.status, attrs: r.attrs }))
    }

    /// The newest object that `spec` makes: tagged with its address and generation, as the
    /// clouds' tag lookups find it (reads, so it can be throttled like any call). An object on its
    /// way out is not found: a create must not adopt what is being deleted.
    pub(crate) async fn find_owned(&self, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        self.admit("read", &spec.address.to_string(), false)?;
        let mut inner = self.lock();
        inner.stats.reads += 1;
        let tagged = inner.store.tagged(&spec.address.to_string()).map_err(Self::store_err)?;
        Ok(tagged
            .into_iter()
            .filter(|r| r.status != "DELETING" && spec.owns(&r.attrs))
            .max_by(|a, b| a.id.cmp(&b.id))
            .map(|r| Observed { id: r.id, status: r.status, attrs: r.attrs }))
    }

    /// Clouds name control planes uniquely per region: another live cluster with this name and
    /// region blocks a create, as EKS's `ResourceInUseException` does.
    fn name_taken(inner: &Inner, rtype: &str, attrs: &Attrs) -> Result<Option<CloudId>, ProviderError> {
        if !rtype.ends_with(".cluster") {
            return Ok(None);
        }
        let key = |a: &Attrs| (a.get("name").cloned(), a.get("region").cloned());
        let want = key(attrs);
        inner.store.find_id(|r| r.rtype == rtype && key(&r.attrs) == want).map_err(Self::store_err)
    }

    pub(crate) async fn create(
        &self,
        id_prefix: &str,
        rtype: &str,
        address: &str,
        attrs: &Attrs,
        latency: Duration,
    ) -> Result<Observed, ProviderError> {
        self.admit("create", address, true)?;
        let started = self.now();
        let mut r = {
            let mut inner = self.lock();
            if let Some(other) = Self::name_taken(&inner, rtype, attrs)? {
                return Err(ProviderError::Fatal(format!(
                    "ResourceInUseException: cluster {} already exists in this region ({other})",
                    attrs.get("name").map(ToString::to_string).unwrap_or_default()
                )));
            }
            inner.stats.creates += 1;
            let id = inner.store.next_id(id_prefix).map_err(Self::store_err)?;
            let mut attrs = attrs.clone();
            if rtype.ends_with(".cluster") {
                // What a client needs to connect, as a managed cluster reports it.
                attrs.insert("endpoint".into(), Value::String(format!("https://{id}.sim.tessera.dev")));
                attrs.insert("certificateAuthority".into(), Value::String(format!("sim-ca-{id}")));
            }
            let settles_at = Some(now_ms() + latency.as_millis() as u64);
            // What an upgrade is told apart by (see `set_unhealthy_after_upgrade`).
            let created_version = (rtype.ends_with(".cluster") || rtype.ends_with(".nodepool"))
                .then(|| attrs.get("version").and_then(Value::as_str).map(str::to_string))
                .flatten();
            let r = SimResource {
                id,
                rtype: rtype.into(),
                status: "CREATING".into(),
                attrs,
                settles_at,
                pending: None,
                created_version,
            };
            inner.store.put(&r).map_err(Self::store_err)?;
            r
        };
        tokio::time::sleep(latency).await;
        r.status = "ACTIVE".into();
        r.settles_at = None;
        self.lock().store.put(&r).map_err(Self::store_err)?;
        self.record("create", &r.id, address, started);
        self.answer("create", address)?;
        Ok(Observed { id: r.id, status: r.status, attrs: r.attrs })
    }

    pub(crate) async fn update(
        &self,
        id: &str,
        address: &str,
        changes: BTreeMap<String, Value>,
        latency: Duration,
    ) -> Result<Observed, ProviderError> {
        self.admit("update", address, true)?;
        let started = self.now();
        let mut r = {
            let mut inner = self.lock();
            inner.stats.updates += 1;
            let mut r = inner
                .store
                .get(id)
                .map_err(Self::store_err)?
                .ok_or_else(|| ProviderError::NotFound(format!("{id} ({address})")))?;
            if r.status != "ACTIVE" {
                return Err(ProviderError::Conflict(format!("{id} is {}", r.status)));
            }
            r.status = "UPDATING".into();
            r.settles_at = Some(now_ms() + latency.as_millis() as u64);
            r.pending = Some(changes.clone().into_iter().collect());
            inner.store.put(&r).map_err(Self::store_err)?;
            r
        };
        tokio::time::sleep(latency).await;
        r.attrs.extend(changes);
        r.status = "ACTIVE".into();
        r.settles_at = None;
        r.pending = None;
        self.lock().store.put(&r).map_err(Self::store_err)?;
        self.record("update", id, address, started);
        self.answer("update", address)?;
        Ok(Observed { id: r.id, status: r.status, attrs: r.attrs })
    }

    pub(crate) async fn delete(&self, id: &str, latency: Duration) -> Result<(), ProviderError> {
        self.admit("delete", id, true)?;
        let started = self.now();
        let address = {
            let mut inner = self.lock();
            inner.stats.deletes += 1;
            let mut r =
                inner.store.get(id).map_err(Self::store_err)?.ok_or_else(|| ProviderError::NotFound(id.to_string()))?;
            r.status = "DELETING".into();
            r.settles_at = Some(now_ms() + latency.as_millis() as u64);
            inner.store.put(&r).map_err(Self::store_err)?;
            r.address_tag().unwrap_or_default().to_string()
        };
        tokio::time::sleep(latency).await;
        self.lock().store.remove(id).map_err(Self::store_err)?;
        self.record("delete", id, &address, started);
        self.answer("delete", &address)?;
        Ok(())
    }

    /// Objects inside sim clusters (see `kube_api`): stored as they are, under ids the caller
    /// chooses, each call admitted like any other (so faults and throttling reach them too).
    pub(crate) fn kube_get(&self, id: &str) -> Result<Option<SimResource>, ProviderError> {
        self.admit("read", id, false)?;
        let mut inner = self.lock();
        inner.stats.reads += 1;
        inner.store.get(id).map_err(Self::store_err)
    }

    pub(crate) fn kube_list(&self, matches: impl Fn(&SimResource) -> bool) -> Result<Vec<SimResource>, ProviderError> {
        self.admit("read", "list", false)?;
        let mut inner = self.lock();
        inner.stats.reads += 1;
        Ok(inner.store.all().map_err(Self::store_err)?.into_iter().filter(|r| matches(r)).collect())
    }

    pub(crate) fn kube_put(&self, r: &SimResource, address: &str) -> Result<(), ProviderError> {
        self.admit("apply", address, true)?;
        let started = self.now();
        {
            let mut inner = self.lock();
            inner.stats.updates += 1;
            inner.store.put(r).map_err(Self::store_err)?;
        }
        self.record("apply", &r.id, address, started);
        Ok(())
    }

    pub(crate) fn kube_remove(&self, id: &str) -> Result<(), ProviderError> {
        self.admit("delete", id, true)?;
        let mut inner = self.lock();
        inner.stats.deletes += 1;
        inner.store.remove(id).map_err(Self::store_err)
    }

    /// An object deleted inside a sim cluster, outside Tessera (`kubectl delete`): `object_id`
    /// as `tessera_kube::contract::object_id` spells it, in the cluster named `cluster_name`.
    pub fn console_delete_kube_object(&self, cluster_name: &str, object_id: &str) -> Result<(), SimError> {
        let found = self.resources()?.into_iter().find(|r| kube_record::is_object(r, cluster_name, object_id));
        let r = found.ok_or_else(|| SimError::NoSuchAddress(format!("{cluster_name}: {object_id}")))?;
        self.lock().store.remove(&r.id)?;
        Ok(())
    }
}
