//! `gke`: Google Kubernetes Engine, on the official `google-cloud-container-v1` client.
//!
//! ## Overview
//!
//! A placement lowers to one cluster and one node pool per pool ([`lower`]); each type's schema
//! (attributes, policies, replacement rules, outputs) is in [`schemas`], registered with its
//! operations in [`types`], the table every call goes through and every answer is checked against. The cluster is
//! created with its first pool in the create body; the other pools through `nodePools.create`.
//! Every mutating call returns an `Operation`, polled until `DONE`, one at a time per cluster
//! ([`ops`]). Requests are built as the API's JSON and read into the client's typed request
//! (what the client sends is what the discovery document describes, and what the tests' fixture
//! checks).
//!
//! ## Ownership and generations
//!
//! Everything Tessera creates carries the ownership tags as GCP labels (cluster
//! `resourceLabels`, a pool's `config.resourceLabels`), in the legal form [`labels`] derives. An
//! object found by name is ours only if fleet, address and generation match (`ResourceSpec::is_ours`). The
//! exception is the first pool, made by the cluster's create body: its labels carry the address
//! but not a later generation (a replaced cluster's first pool is new, the pool spec's generation
//! is not), so a pool create adopts a pool of its own address and an older generation on its own
//! cluster and relabels it.
//!
//! ## Credentials
//!
//! Application Default Credentials by default (which covers workload identity on GKE and a
//! `GOOGLE_APPLICATION_CREDENTIALS` key file); in the pipeline, the sealed `gcp` section's
//! `serviceAccountKey` (a key file's JSON) or `workloadIdentityConfig` (an external-account
//! configuration's JSON). [`GkeSettings::endpoint`] (or `GKE_ENDPOINT`) points the client at
//! another server with anonymous credentials (the tests' fixture).

mod cluster;
pub mod error;
pub mod labels;
pub mod lower;
mod nodepool;
pub mod ops;
pub mod schemas;
pub mod types;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use google_cloud_container_v1::client::ClusterManager;
use serde_json::{Value, json};
use tessera_provider_api::poll::PollPolicy;
use tessera_provider_api::serial::Serial;
use tessera_provider_api::{
    Attrs, Backend, BuildContext, BuildError, Catalog, ClusterTemplate, CredentialSection, Credentials, KubeAccess,
    Operation, Outcome, Provider, ProviderError, ProviderRef, Request, ResourceSpec, Schema, ScopeKey, SpecField,
    TAG_ADDRESS, TAG_FLEET, TAGS_ATTR, Violation, catalogs,
};
use tokio::sync::OnceCell;

pub const KIND: &str = "gke";

/// GKE cluster names are at most 40 characters.
pub const MAX_CLUSTER_NAME: usize = 40;

/// Points the backend at another server (the fixture) with anonymous credentials.
pub const ENDPOINT_ENV: &str = "GKE_ENDPOINT";

/// How to reach GKE. Default: `container.googleapis.com` with Application Default Credentials.
#[derive(Debug, Clone, Default)]
pub struct GkeSettings {
    /// Another endpoint (`http://127.0.0.1:PORT`), reached with anonymous credentials.
    pub endpoint: Option<String>,
    pub poll: PollPolicy,
}

/// How the client authenticates.
#[derive(Clone)]
enum Auth {
    Default,
    Anonymous,
    ServiceAccountKey(Value),
    ExternalAccount(Value),
}

pub struct GkeProvider {
    settings: GkeSettings,
    auth: Auth,
    catalog: Catalog,
    pub(crate) poll: PollPolicy,
    pub(crate) serial: Serial,
    client: OnceCell<ClusterManager>,
}

impl GkeProvider {
    pub fn new(settings: GkeSettings) -> Self {
        let auth = if settings.endpoint.is_some() { Auth::Anonymous } else { Auth::Default };
        Self::with_auth(settings, auth)
    }

    fn with_auth(settings: GkeSettings, auth: Auth) -> Self {
        let poll = settings.poll.clone();
        Self { settings, auth, catalog: catalogs::gke(), poll, serial: Serial::new(), client: OnceCell::new() }
    }

    /// The client, built on first use (building credentials is async).
    pub(crate) async fn client(&self) -> Result<&ClusterManager, ProviderError> {
        self.client
            .get_or_try_init(|| async {
                let creds = match &self.auth {
                    Auth::Anonymous => google_cloud_auth::credentials::anonymous::Builder::new().build(),
                    Auth::Default => google_cloud_auth::credentials::Builder::default()
                        .build()
                        .map_err(|e| ProviderError::Fatal(format!("GCP Application Default Credentials: {e}")))?,
                    Auth::ServiceAccountKey(key) => {
                        google_cloud_auth::credentials::service_account::Builder::new(key.clone())
                            .build()
                            .map_err(|e| ProviderError::Fatal(format!("gcp.serviceAccountKey: {e}")))?
                    }
                    Auth::ExternalAccount(config) => {
                        google_cloud_auth::credentials::external_account::Builder::new(config.clone())
                            .build()
                            .map_err(|e| ProviderError::Fatal(format!("gcp.workloadIdentityConfig: {e}")))?
                    }
                };
                let mut builder = ClusterManager::builder().with_credentials(creds);
                if let Some(endpoint) = &self.settings.endpoint {
                    builder = builder.with_endpoint(endpoint.clone());
                }
                builder.build().await.map_err(|e| ProviderError::Fatal(format!("building the GKE client: {e}")))
            })
            .await
    }
}

/// A typed request from the API's JSON (camelCase, enums by name), so that what is built reads
/// like the discovery document.
pub(crate) fn request<T: serde::de::DeserializeOwned>(what: &str, body: Value) -> Result<T, ProviderError> {
    serde_json::from_value(body).map_err(|e| ProviderError::Fatal(format!("{what}: building the request: {e}")))
}

/// The same fleet and address, whatever the generation.
pub(crate) fn same_owner(spec: &ResourceSpec, observed: &Attrs) -> bool {
    let tag = |a: &Attrs, k: &str| a.get(TAGS_ATTR).and_then(|t| t.get(k)).cloned();
    tag(observed, TAG_FLEET) == tag(&spec.attrs, TAG_FLEET)
        && tag(observed, TAG_ADDRESS) == tag(&spec.attrs, TAG_ADDRESS)
}

/// A kubeconfig for a cluster, authenticating through `gke-gcloud-auth-plugin`: no token is
/// stored.
pub fn kubeconfig(cluster: &Attrs) -> Option<Value> {
    let name = cluster.get("name")?.as_str()?;
    let server = cluster.get("endpoint")?.as_str()?;
    let ca = cluster.get("certificateAuthority")?.as_str()?;
    let project = cluster.get("project")?.as_str()?;
    let location = cluster.get("location")?.as_str()?;
    // gcloud's own naming, so the context reads the same as one from `gcloud container clusters get-credentials`.
    let context = format!("gke_{project}_{location}_{name}");
    let mut config = tessera_provider_api::kubeconfig::exec(&context, server, ca, "gke-gcloud-auth-plugin", &[]);
    // What gcloud writes beside the plugin: where to get it, and the cluster's info for it.
    let exec = &mut config["users"][0]["user"]["exec"];
    exec["installHint"] = json!(
        "Install gke-gcloud-auth-plugin: https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl#install_plugin"
    );
    exec["provideClusterInfo"] = json!(true);
    Some(config)
}

#[async_trait]
impl Provider for GkeProvider {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    fn estimate(&self, rtype: &str, op: Operation) -> Duration {
        types::TYPES.estimate(rtype, op)
    }

    fn kubeconfig(&self, rtype: &str, attrs: &Attrs) -> Option<Value> {
        (rtype == lower::CLUSTER).then(|| kubeconfig(attrs)).flatten()
    }

    async fn call(&self, request: Request<'_>) -> Result<Outcome, ProviderError> {
        types::TYPES.call(self, request).await
    }
}

/// Reading typed values out of desired attributes. Lowering wrote them, so a missing or
/// mistyped value is a bug in a plan file: a fatal error, never a panic.
pub(crate) fn text<'a>(attrs: &'a Attrs, key: &str) -> Result<&'a str, ProviderError> {
    attrs.get(key).and_then(Value::as_str).ok_or_else(|| missing(key))
}

pub(crate) fn int(attrs: &Attrs, key: &str) -> Result<i64, ProviderError> {
    attrs.get(key).and_then(Value::as_i64).ok_or_else(|| missing(key))
}

/// A text the API sends, `null` when it is empty: proto3 leaves an unset text empty, and an empty
/// name or version is not one, so the schema check reports it rather than record "".
pub(crate) fn present(text: &str) -> Value {
    if text.is_empty() { Value::Null } else { json!(text) }
}

pub(crate) fn missing(key: &str) -> ProviderError {
    ProviderError::Fatal(format!("resource attribute `{key}` is missing or has the wrong type"))
}

/// `major.minor` of a GKE version (`1.31.6-gke.1000000` → `1.31`).
pub fn minor(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// How a provider authenticates: sealed pipeline credentials replace the ambient ones entirely;
/// without them, an endpoint override is anonymous and GCP itself gets Application Default
/// Credentials.
fn auth_for(credentials: Option<&Credentials>, endpoint: bool) -> Result<Auth, BuildError> {
    let Some(creds) = credentials else { return Ok(if endpoint { Auth::Anonymous } else { Auth::Default }) };
    let json = |key: &str| -> Result<Option<Value>, BuildError> {
        creds
            .expose(key)
            .map(|text| {
                serde_json::from_str(text).map_err(|e| BuildError::Invalid(format!("gcp.{key} is not JSON: {e}")))
            })
            .transpose()
    };
    Ok(match (json("serviceAccountKey")?, json("workloadIdentityConfig")?) {
        (Some(key), _) => Auth::ServiceAccountKey(key),
        (None, Some(config)) => Auth::ExternalAccount(config),
        (None, None) => Auth::Default,
    })
}

pub struct GkeBackend;

/// GCP project ids: 6 to 30 lowercase letters, digits and hyphens, starting with a letter and not
/// ending with a hyphen.
fn project(v: &str) -> Result<(), String> {
    let ok = (6..=30).contains(&v.len())
        && v.starts_with(|c: char| c.is_ascii_lowercase())
        && !v.ends_with('-')
        && v.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err("a project id is 6 to 30 lowercase letters, digits and '-', starting with a letter".into())
    }
}

const SCOPE: &[ScopeKey] =
    &[ScopeKey { name: "project", required: true, example: "project: acme-platform", check: project }];

/// The sealed `gcp` section: a service-account key file's JSON, or an external-account
/// (workload identity federation) configuration's JSON.
pub const CREDENTIALS: CredentialSection =
    CredentialSection { name: "gcp", required: &[], one_of: &[&["serviceAccountKey", "workloadIdentityConfig"]] };

impl Backend for GkeBackend {
    fn lower(
        &self,
        cluster: &ClusterTemplate,
        provider: &ProviderRef,
        _settings: &tessera_provider_api::Extensions,
    ) -> Vec<tessera_provider_api::ResourceSpec> {
        lower::lower(&tessera_provider_api::catalogs::gke(), cluster, provider)
    }

    fn kube_access(&self, cluster: &ClusterTemplate, provider: &ProviderRef) -> Option<KubeAccess> {
        Some(lower::kube_access(cluster, provider))
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    fn schemas(&self) -> Vec<Schema> {
        types::TYPES.schemas().cloned().collect()
    }

    fn catalog(&self, _provider: &ProviderRef) -> Option<Catalog> {
        Some(catalogs::gke())
    }

    fn scope_keys(&self) -> &'static [ScopeKey] {
        SCOPE
    }

    fn credentials(&self) -> Option<CredentialSection> {
        Some(CREDENTIALS)
    }

    fn validate(&self, cluster: &ClusterTemplate, _provider: &ProviderRef) -> Vec<Violation> {
        let mut out = Vec::new();
        let name = format!("{}-{}", cluster.fleet, cluster.placement);
        if name.len() > MAX_CLUSTER_NAME {
            out.push(Violation::new(
                SpecField::PlacementName,
                format!("GKE cluster name `{name}` is {} characters; GKE allows {MAX_CLUSTER_NAME}", name.len()),
                "cluster names are `{fleet}-{placement}`: shorten the placement or the fleet name",
            ));
        }
        out.extend(tessera_provider_api::backend::node_limits(cluster, &tessera_provider_api::catalogs::GKE_NODES));
        out.extend(tessera_provider_api::backend::api_access(cluster, &tessera_provider_api::catalogs::GKE_API));
        out.extend(tessera_provider_api::backend::private_always(cluster, "GKE"));
        for pool in &cluster.pools {
            if let Some(problem) = lower::scale_problem(pool, cluster.zones.len()) {
                out.push(Violation::new(
                    SpecField::Pool(pool.name.clone()),
                    problem,
                    "GKE starts a pool with the same count in every zone: raise `scale.max`, or name fewer zones",
                ));
            }
        }
        out
    }

    fn build(&self, ctx: &BuildContext<'_>) -> Result<Arc<dyn Provider>, BuildError> {
        let settings = match ctx.extensions.get::<GkeSettings>() {
            Some(s) => s.clone(),
            None => GkeSettings {
                endpoint: std::env::var(ENDPOINT_ENV).ok().filter(|e| !e.is_empty()),
                poll: PollPolicy::from_env().map_err(BuildError::Invalid)?,
            },
        };
        let auth = auth_for(ctx.credentials, settings.endpoint.is_some())?;
        Ok(Arc::new(GkeProvider::with_auth(settings, auth)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_ids_are_checked() {
        assert!(project("acme-platform").is_ok());
        for bad in ["acme", "Acme-platform", "acme-platform-", "1acme-platform", "acme_platform"] {
            assert!(project(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_kubeconfig_execs_the_gke_plugin_and_holds_no_token() {
        let mut a = Attrs::new();
        a.insert("name".into(), json!("core-gcp-eu"));
        a.insert("endpoint".into(), json!("https://203.0.113.7"));
        a.insert("certificateAuthority".into(), json!("LS0tLS1CRUdJTg=="));
        a.insert("project".into(), json!("acme-platform"));
        a.insert("location".into(), json!("europe-west4"));
        let k = kubeconfig(&a).unwrap();
        assert_eq!(k["clusters"][0]["cluster"]["server"], "https://203.0.113.7");
        assert_eq!(k["clusters"][0]["cluster"]["certificate-authority-data"], "LS0tLS1CRUdJTg==");
        assert_eq!(k["users"][0]["user"]["exec"]["command"], "gke-gcloud-auth-plugin");
        assert_eq!(k["current-context"], "gke_acme-platform_europe-west4_core-gcp-eu");
        assert!(!k.to_string().contains("token"), "{k}");
    }

    #[test]
    fn sealed_credentials_choose_the_authentication_and_bad_json_is_refused() {
        let creds = |k: &str, v: &str| {
            let mut c = Credentials::default();
            c.insert(k, v.to_string().into());
            c
        };
        let key =
            creds("serviceAccountKey", r#"{"type": "service_account", "client_email": "x@p.iam.gserviceaccount.com"}"#);
        assert!(matches!(auth_for(Some(&key), true), Ok(Auth::ServiceAccountKey(v)) if v["type"] == "service_account"));
        let wif = creds("workloadIdentityConfig", r#"{"type": "external_account"}"#);
        assert!(matches!(auth_for(Some(&wif), false), Ok(Auth::ExternalAccount(_))));
        let bad = creds("serviceAccountKey", "not json");
        let err = auth_for(Some(&bad), false).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("gcp.serviceAccountKey is not JSON") && !err.contains("not json"), "{err}");
        assert!(matches!(auth_for(None, true), Ok(Auth::Anonymous)));
        assert!(matches!(auth_for(None, false), Ok(Auth::Default)));
    }

    #[test]
    fn versions_compare_by_minor() {
        assert_eq!(minor("1.31.6-gke.1000000"), "1.31");
        assert_eq!(minor("1.32"), "1.32");
    }
}
