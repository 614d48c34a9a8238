//! The handle a test holds: start options, the URL, and the test API. Its writes bypass
//! validation: they stand for people and other tools acting on the project.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::api::{Config, Fault, Op, RecordedRequest, Rejection, State, fingerprint};
use crate::schema::{Discovery, default_discovery};
use crate::server::{self, Running, Shared};

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("the GKE fixture cannot start: {0}")]
    Start(String),
}

#[derive(Debug, Clone)]
pub struct FixtureBuilder {
    discovery: PathBuf,
    config: Config,
}

impl FixtureBuilder {
    /// How long each operation runs before it is `DONE` (default 50 ms).
    pub fn operation_time(mut self, d: Duration) -> Self {
        self.config.operation_time = d;
        self
    }

    /// Concurrent operations per project before 429 (default 5, as GKE).
    pub fn max_concurrent_operations(mut self, n: usize) -> Self {
        self.config.max_concurrent_operations = n;
        self
    }

    /// What clusters report as `endpoint` (default `127.0.0.1`).
    pub fn cluster_endpoint(mut self, endpoint: &str) -> Self {
        self.config.endpoint = endpoint.to_string();
        self
    }

    pub fn start(self) -> Result<GkeFixture, FixtureError> {
        let discovery = Discovery::load(&self.discovery).map_err(FixtureError::Start)?;
        let shared = Arc::new(Shared { discovery, state: Mutex::new(State::new(self.config)) });
        let running = server::start(shared.clone()).map_err(|e| FixtureError::Start(e.to_string()))?;
        Ok(GkeFixture { shared, running })
    }
}

/// A running GKE fixture. Dropping it stops the server.
pub struct GkeFixture {
    shared: Arc<Shared>,
    running: Running,
}

impl GkeFixture {
    pub fn builder() -> FixtureBuilder {
        FixtureBuilder {
            discovery: default_discovery(),
            config: Config {
                operation_time: Duration::from_millis(50),
                max_concurrent_operations: 5,
                endpoint: "127.0.0.1".into(),
            },
        }
    }

    pub fn start() -> Result<GkeFixture, FixtureError> {
        Self::builder().start()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.running.address)
    }

    /// Every cluster, as `clusters.get` answers (pools inside), after the clock is checked.
    pub fn clusters(&self) -> Vec<Value> {
        let mut s = self.shared.state();
        s.tick();
        s.clusters.values().cloned().collect()
    }

    /// One cluster by id (`projects/P/locations/L/clusters/C`).
    pub fn cluster(&self, id: &str) -> Option<Value> {
        let mut s = self.shared.state();
        s.tick();
        s.clusters.get(id).cloned()
    }

    /// The pools of a cluster.
    pub fn node_pools(&self, cluster: &str) -> Vec<Value> {
        self.cluster(cluster).and_then(|c| c["nodePools"].as_array().cloned()).unwrap_or_default()
    }

    /// Edits a cluster out of band (the console, another tool). Resource labels keep their
    /// fingerprint in step, as GKE's do.
    pub fn edit_cluster(&self, id: &str, edit: impl FnOnce(&mut Value)) -> bool {
        let mut s = self.shared.state();
        let Some(c) = s.clusters.get_mut(id) else { return false };
        edit(c);
        let labels = c["resourceLabels"].clone();
        c["labelFingerprint"] = Value::String(fingerprint(&labels));
        true
    }

    /// Edits one node pool out of band.
    pub fn edit_node_pool(&self, cluster: &str, pool: &str, edit: impl FnOnce(&mut Value)) -> bool {
        let mut s = self.shared.state();
        let found = s
            .clusters
            .get_mut(cluster)
            .and_then(|c| c["nodePools"].as_array_mut())
            .and_then(|ps| ps.iter_mut().find(|p| p["name"] == pool));
        match found {
            Some(p) => {
                edit(p);
                true
            }
            None => false,
        }
    }

    /// Starts an operation on a cluster as another tool would (the lock Tessera holds cannot
    /// see it), running for `duration`. `Err` when the cluster is busy or the project is full.
    pub fn begin_operation(&self, cluster: &str, duration: Duration) -> Result<String, String> {
        let parts: Vec<&str> = cluster.split('/').collect();
        let (Some(p), Some(l), Some(c)) = (parts.get(1), parts.get(3), parts.get(5)) else {
            return Err(format!("`{cluster}` is not projects/P/locations/L/clusters/C"));
        };
        let mut s = self.shared.state();
        s.tick();
        s.begin(p, l, c, None, "UPDATE_CLUSTER", duration, true).map_err(|a| a.body.to_string())
    }

    /// 503 `UNAVAILABLE` for the next matching requests.
    pub fn fail_next(&self, fault: Fault) {
        self.shared.state().faults.push(fault);
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.state().requests.clone()
    }

    /// Every operation so far, in the order they started.
    pub fn operations(&self) -> Vec<Op> {
        let mut s = self.shared.state();
        s.tick();
        s.ops.clone()
    }

    /// How many mutating requests were refused with 400 `FAILED_PRECONDITION` (busy cluster).
    pub fn conflicts(&self) -> usize {
        self.shared.state().conflicts
    }

    /// How many were refused with 429 (the project's operation limit).
    pub fn throttled(&self) -> usize {
        self.shared.state().throttled
    }

    pub fn rejections(&self) -> Vec<Rejection> {
        self.shared.state().rejections.clone()
    }

    /// Fails the test if any body did not validate against the discovery document.
    pub fn assert_no_rejections(&self) {
        let rejections = self.rejections();
        assert!(
            rejections.is_empty(),
            "bodies that do not validate against the discovery document:\n{}",
            rejections
                .iter()
                .map(|r| format!("{} {} ({}): {}\n  {}", r.method_id, r.what, r.schema, r.errors.join("; "), r.body))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
