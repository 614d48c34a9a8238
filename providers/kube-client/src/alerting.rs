//! `kube.alerting`: whether the cluster's alerting works, for `tessera verify`.
//!
//! ## Overview
//!
//! A read-only type ([`tessera_kube::alerting_status::ALERTING`]): the cluster's Alertmanager is
//! asked, through the API server's proxy to its Service, for its status (the configuration it
//! loaded), its active heartbeat alerts and its active critical alerts;
//! [`tessera_kube::alerting_status::judge`] and [`tessera_kube::alerting_status::critical_of`]
//! read the answers. An Alertmanager that is not there (no Service, no ready endpoint) is
//! reported as such, not as an error of the whole read: `verify` names it beside the node
//! coverage, with no critical alerts: `ok()` is false then, so no gate takes that silence for
//! health.

use tessera_kube::alerting_status::{self, AlertingStatus};
use tessera_provider_api::{Attrs, CloudId, Observed, ProviderError};

use crate::cluster::Cluster;

/// `read(ALERTING, _)`; the id is not used (a cluster has one alerting).
pub async fn read(cluster: &Cluster, id: &CloudId) -> Result<Option<Observed>, ProviderError> {
    let status = answers(cluster).await?.unwrap_or_else(unreachable_alertmanager);
    let attrs: Attrs = match serde_json::to_value(&status) {
        Ok(serde_json::Value::Object(m)) => m.into_iter().collect(),
        _ => Attrs::new(),
    };
    Ok(Some(Observed { id: id.clone(), status: "Read".into(), attrs }))
}

/// Alertmanager's three answers, read; or (inside `Ok`) why one was not given. An Alertmanager
/// that stops answering between the questions is not there, as one that never answered: a
/// status without its critical alerts must not pass for one with none.
async fn answers(cluster: &Cluster) -> Result<Result<AlertingStatus, String>, ProviderError> {
    let status = match ask(cluster, "reading Alertmanager's status", &alerting_status::status_path()).await? {
        Ok(v) => v,
        Err(why) => return Ok(Err(why)),
    };
    let heartbeats = match ask(cluster, "reading Alertmanager's heartbeat", &alerting_status::heartbeat_path()).await? {
        Ok(v) => v,
        Err(why) => return Ok(Err(why)),
    };
    let critical =
        match ask(cluster, "reading Alertmanager's critical alerts", &alerting_status::critical_path()).await? {
            Ok(v) => v,
            Err(why) => return Ok(Err(why)),
        };
    let mut judged = alerting_status::judge(&status, &heartbeats);
    judged.critical_firing = alerting_status::critical_of(&critical);
    Ok(Ok(judged))
}

/// Alertmanager's answer, or (inside `Ok`) why it gave none: a missing Service and a Service
/// without a ready endpoint are facts about the cluster, not failures of the read.
async fn ask(cluster: &Cluster, what: &str, path: &str) -> Result<Result<serde_json::Value, String>, ProviderError> {
    match cluster.wire.get_path(what, path).await {
        Ok(Some(v)) => Ok(Ok(v)),
        Ok(None) => Ok(Err(format!("no Service `{}` in `monitoring`", alerting_status::alertmanager_service()))),
        // The API server's proxy says so with 503; other 503s (the API server itself) stay
        // retryable.
        Err(ProviderError::Retryable { message, .. }) if message.contains("no endpoints available") => Ok(Err(message)),
        Err(e) => Err(e),
    }
}

fn unreachable_alertmanager(why: String) -> AlertingStatus {
    AlertingStatus {
        routing_loaded: false,
        heartbeat_firing: false,
        detail: Some(format!("Alertmanager did not answer: {why}")),
        critical_firing: Vec::new(),
    }
}
