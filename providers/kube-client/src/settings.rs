//! The typed settings of the `kube` backend, passed through
//! [`Extensions`](tessera_provider_api::Extensions).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use tessera_provider_api::poll::PollPolicy;

/// How long to wait for a TCP connection to the API server. kube-rs's default (none, so the
/// system's, about two minutes) would make one attempt at a black-holed private endpoint use up
/// most of the bound on an unreachable API.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How the `kube` provider reaches clusters and renders charts. Every field has a default for
/// real clusters; tests override the endpoint, the token and the charts.
#[derive(Debug, Clone)]
pub struct KubeClientSettings {
    /// Every cluster's API server is reached here instead of at its `endpoint` output (a test
    /// fixture, plain http, whose CA the cluster's output does not describe).
    pub endpoint: Option<String>,
    /// A bearer token instead of the exec authentication (tests). Never printed.
    pub bearer_token: Option<SecretString>,
    /// The helm binary. Default: env `TESSERA_HELM`, else `helm` on the PATH.
    pub helm: Option<PathBuf>,
    /// Where pulled charts are kept, one directory per chart, version and digest. Default:
    /// `$XDG_CACHE_HOME/tessera/charts`, else `~/.cache/tessera/charts`.
    pub chart_cache: Option<PathBuf>,
    /// Chart references (`oci://…`) rendered from a local chart directory instead of being pulled.
    pub local_charts: BTreeMap<String, PathBuf>,
    /// Waits for CRDs to be established and discoverable, and for deletions to finish.
    pub poll: PollPolicy,
    /// The deadline for a DaemonSet to be ready on every node it must cover.
    pub rollout: PollPolicy,
    /// How long one attempt waits for a TCP connection ([`CONNECT_TIMEOUT`]).
    pub connect_timeout: Duration,
}

impl Default for KubeClientSettings {
    fn default() -> Self {
        Self {
            endpoint: None,
            bearer_token: None,
            helm: None,
            chart_cache: None,
            local_charts: BTreeMap::new(),
            poll: PollPolicy {
                min_delay: Duration::from_millis(500),
                max_delay: Duration::from_secs(10),
                total: Duration::from_secs(5 * 60),
            },
            rollout: PollPolicy {
                min_delay: Duration::from_secs(1),
                max_delay: Duration::from_secs(15),
                total: Duration::from_secs(15 * 60),
            },
            connect_timeout: CONNECT_TIMEOUT,
        }
    }
}

impl KubeClientSettings {
    pub fn helm_binary(&self) -> PathBuf {
        self.helm
            .clone()
            .or_else(|| std::env::var_os("TESSERA_HELM").filter(|v| !v.is_empty()).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("helm"))
    }

    pub fn chart_cache_dir(&self) -> PathBuf {
        if let Some(dir) = &self.chart_cache {
            return dir.clone();
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("tessera").join("charts")
    }
}
