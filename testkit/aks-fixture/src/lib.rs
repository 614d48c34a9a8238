//! Test-only: an Azure Resource Manager fixture for AKS that checks every body against the
//! official OpenAPI description (2024-09-01).
//!
//! ## Overview
//!
//! No AKS emulator keeps operations running or refuses concurrent ones (TESTBED.md), so this is a
//! real HTTP server on 127.0.0.1 that does:
//! - resource groups (Resources API), managed clusters, agent pools, `listClusterUserCredential`,
//!   and the operation status URLs it hands out ([`cloud`] has the rules);
//! - every request body is checked against `managedClusters.json` — JSON Schema draft 4, plus
//!   properties the description does not have — and so is every body it answers ([`schema`]);
//!   a violation is answered 400 *and* recorded, and [`AksFixture::assert_no_rejections`] fails
//!   the test that sent it;
//! - long-running operations that take [`Builder::operation_time`], with `Azure-AsyncOperation`
//!   on PUTs, `Location` on DELETEs, and `Retry-After` on both;
//! - eTags with `If-Match`/`If-None-Match` (412), 409 `OperationNotAllowed` on a busy cluster,
//!   injected faults ([`Fault`]: 429s, 5xx), and a log of every request ([`Logged`]).
//!
//! The handle reads and changes the fixture's objects directly, as the portal would.
//!
//! ```no_run
//! use tessera_aks_fixture::AksFixture;
//! let fixture = AksFixture::builder().operation_time(std::time::Duration::from_millis(200)).start().unwrap();
//! fixture.add_group("00000000-0000-0000-0000-000000000000", "rg-platform", "westeurope");
//! let endpoint = fixture.url(); // AZURE_ENDPOINT for the backend
//! // ... run the code under test ...
//! fixture.assert_no_rejections();
//! ```

mod api;
pub mod cloud;
pub mod schema;
mod server;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use api::Shared;
pub use api::{Fault, Logged};
use cloud::Cloud;

/// The CA the fixture's kubeconfigs carry (a placeholder, base64).
pub const CA_DATA: &str = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCmZpeHR1cmUKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=";

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("the AKS fixture cannot start: {0}")]
    Start(String),
}

pub struct Builder {
    operation_time: Duration,
    retry_after: u64,
    apispecs: PathBuf,
}

impl Builder {
    /// How long every operation runs before it succeeds.
    pub fn operation_time(mut self, t: Duration) -> Self {
        self.operation_time = t;
        self
    }

    /// The `Retry-After` (seconds) sent while an operation runs (ARM's default is 60; tests 0).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = seconds;
        self
    }

    pub fn start(self) -> Result<AksFixture, FixtureError> {
        let schemas = schema::Schemas::load(&self.apispecs, &api::ROOTS).map_err(FixtureError::Start)?;
        let shared = Arc::new(Shared {
            cloud: Mutex::new(Cloud::new(self.operation_time)),
            schemas,
            log: Mutex::new(Vec::new()),
            rejections: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            retry_after: self.retry_after,
            api_version: "2024-09-01".into(),
            throttle: Mutex::new(None),
            flat_errors: std::sync::atomic::AtomicBool::new(false),
        });
        let running = server::start(shared.clone())?;
        Ok(AksFixture { running, shared })
    }
}

pub struct AksFixture {
    running: server::Running,
    shared: Arc<Shared>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AksFixture {
    pub fn builder() -> Builder {
        Builder {
            operation_time: Duration::from_millis(200),
            retry_after: 0,
            apispecs: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/apispecs/aks"),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.running.address)
    }

    fn cloud(&self) -> std::sync::MutexGuard<'_, Cloud> {
        let mut c = lock(&self.shared.cloud);
        c.settle();
        c
    }

    /// A resource group that exists before the test (one a placement names).
    pub fn add_group(&self, subscription: &str, name: &str, location: &str) {
        let id = format!("/subscriptions/{subscription}/resourcegroups/{name}");
        let _ = self.cloud().put_group(&id, name, &serde_json::json!({ "location": location }), None);
    }

    /// Resource groups, as served.
    pub fn groups(&self) -> Vec<Value> {
        self.cloud().groups.values().map(|o| o.body.clone()).collect()
    }

    /// Managed clusters, as served (with their pools as `agentPoolProfiles`).
    pub fn clusters(&self) -> Vec<Value> {
        let c = self.cloud();
        c.clusters.keys().filter_map(|k| c.cluster_body(k)).collect()
    }

    /// Agent pools, as served.
    pub fn pools(&self) -> Vec<Value> {
        self.cloud().pools.values().map(|o| o.body.clone()).collect()
    }

    /// Changes a pool's properties out of band. False if there is no such pool.
    pub fn edit_pool(&self, pool_id: &str, edit: impl FnOnce(&mut Map<String, Value>)) -> bool {
        self.cloud().edit_pool(pool_id, edit)
    }

    /// Keeps a cluster busy for `t`, as an operation started elsewhere would.
    pub fn busy(&self, cluster_id: &str, t: Duration) {
        self.cloud().busy_until.insert(cloud::key(cluster_id), Instant::now() + t);
    }

    /// From now on, answers a share `rate` of all requests with 429 and `Retry-After:
    /// retry_after` (seconds), before they do anything; `seed` makes a run replayable.
    pub fn throttle(&self, rate: f64, retry_after: u64, seed: u64) {
        use rand::SeedableRng;
        let rng = rand::rngs::SmallRng::seed_from_u64(seed);
        *lock(&self.shared.throttle) = Some(api::Throttle { rate, retry_after, rng });
    }

    /// Error bodies from now on in ARM's flat shape (`{"code", "message"}`).
    pub fn flat_errors(&self) {
        self.shared.flat_errors.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn fail_next(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    pub fn requests(&self) -> Vec<Logged> {
        lock(&self.shared.log).clone()
    }

    pub fn rejections(&self) -> Vec<String> {
        lock(&self.shared.rejections).clone()
    }

    /// Fails the test if any body broke the description.
    pub fn assert_no_rejections(&self) {
        let r = self.rejections();
        assert!(r.is_empty(), "the AKS fixture refused bodies that break the official description:\n{}", r.join("\n"));
    }
}
