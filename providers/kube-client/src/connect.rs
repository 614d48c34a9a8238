//! A kube-rs client for a cluster, from the cluster's outputs.
//!
//! ## Overview
//!
//! The connection gives the API server's `endpoint`, its CA (`certificateAuthority`, base64 of
//! the PEM bundle, as kubeconfigs carry it) and the cluster's `name`; the provider's
//! `scope.auth` says how to authenticate. Authentication is always a kubeconfig *exec* plugin, so
//! no token is ever stored: the plugin is run by kube-rs when a token is needed and again when it
//! expires.
//! - `aws`: `aws eks get-token --cluster-name NAME --region REGION --output json`;
//! - `azure`: `kubelogin get-token --login azurecli --server-id 6dae42f8-…` (the AKS AAD server);
//! - `gcp`: `gke-gcloud-auth-plugin`;
//! - `kind`: kind's admin client certificate, asked of `kind get kubeconfig --name NAME` each
//!   time a client is built and kept in memory only (kind has no exec plugin, and the key must
//!   not reach state);
//! - `none`: no credentials.
//!
//! [`kubeconfig`] builds that kubeconfig as JSON (pure, so it is tested as data);
//! [`client`] turns it into a kube-rs [`Client`](kube::Client). kube-rs's own retry is off: the
//! engine retries typed errors and honours `Retry-After`.

use kube::config::{KubeConfigOptions, Kubeconfig};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tessera_kube::contract::{
    AUTH_AWS, AUTH_AZURE, AUTH_GCP, AUTH_KIND, AUTH_NONE, OUTPUT_CA, OUTPUT_ENDPOINT, OUTPUT_NAME, SCOPE_AUTH,
};
use tessera_provider_api::{Connection, ProviderRef};

use crate::error::KubeError;
use crate::settings::KubeClientSettings;

/// The AAD application of the AKS API server, which `kubelogin` asks a token for.
pub const AKS_SERVER_ID: &str = "6dae42f8-4368-4678-94ff-3960e28e3630";

const EXEC_API: &str = "client.authentication.k8s.io/v1beta1";

fn output<'a>(conn: &'a Connection, name: &str) -> Result<&'a str, KubeError> {
    conn.output(name).map_err(|e| KubeError::Config(e.to_string()))
}

/// The exec plugin for `auth`, or `None` for no credentials.
fn exec(auth: &str, cluster: &str, region: &str) -> Result<Option<Value>, KubeError> {
    let (command, args, hint): (&str, Vec<&str>, &str) = match auth {
        AUTH_AWS => (
            "aws",
            vec!["eks", "get-token", "--cluster-name", cluster, "--region", region, "--output", "json"],
            "install the AWS CLI v2: https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html",
        ),
        AUTH_AZURE => (
            "kubelogin",
            vec!["get-token", "--login", "azurecli", "--server-id", AKS_SERVER_ID],
            "install kubelogin: https://azure.github.io/kubelogin/install.html",
        ),
        AUTH_GCP => {
            ("gke-gcloud-auth-plugin", vec![], "install it with `gcloud components install gke-gcloud-auth-plugin`")
        }
        // kind's client certificate is set on the client by `client`, never written here.
        AUTH_NONE | AUTH_KIND => return Ok(None),
        other => {
            return Err(KubeError::Config(format!(
                "unknown Kubernetes authentication `{other}` (expected {AUTH_AWS}, {AUTH_AZURE}, {AUTH_GCP}, {AUTH_KIND} or {AUTH_NONE})"
            )));
        }
    };
    Ok(Some(json!({
        "apiVersion": EXEC_API,
        "command": command,
        "args": args,
        "installHint": hint,
        "interactiveMode": "Never",
        "provideClusterInfo": false,
    })))
}

/// The kubeconfig (JSON) for the cluster behind `conn`: its endpoint (or the settings' override)
/// and CA, and the exec plugin its `scope.auth` names. With a static token in the settings, no
/// exec plugin: the token is set on the client, never written here.
pub fn kubeconfig(
    conn: &Connection,
    provider: &ProviderRef,
    settings: &KubeClientSettings,
) -> Result<Value, KubeError> {
    let name = output(conn, OUTPUT_NAME)?;
    let mut cluster = serde_json::Map::new();
    match &settings.endpoint {
        Some(url) => {
            cluster.insert("server".into(), url.as_str().into());
            // A plain-http override (a test fixture) has no TLS for the cluster's CA to verify.
            if !url.starts_with("http://") {
                cluster.insert("certificate-authority-data".into(), output(conn, OUTPUT_CA)?.into());
            }
        }
        None => {
            cluster.insert("server".into(), output(conn, OUTPUT_ENDPOINT)?.into());
            cluster.insert("certificate-authority-data".into(), output(conn, OUTPUT_CA)?.into());
        }
    }
    let mut user = serde_json::Map::new();
    if settings.bearer_token.is_none() {
        let auth = provider.scope.get(SCOPE_AUTH).ok_or_else(|| {
            KubeError::Config(format!(
                "the Kubernetes provider {provider} has no `scope.{SCOPE_AUTH}`: how to authenticate to {name} is unknown"
            ))
        })?;
        if let Some(exec) = exec(auth, name, &provider.region)? {
            user.insert("exec".into(), exec);
        }
    }
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }))
}

/// A kube-rs client for the cluster behind `conn`, and the URL it talks to (for messages).
pub async fn connected(
    conn: &Connection,
    provider: &ProviderRef,
    settings: &KubeClientSettings,
) -> Result<(kube::Client, String), KubeError> {
    let (config, endpoint) = config(conn, provider, settings).await?;
    let client =
        kube::Client::try_from(config).map_err(|e| KubeError::Config(format!("connecting to {}: {e}", conn.source)))?;
    Ok((client, endpoint))
}

/// A kube-rs client for the cluster behind `conn`.
pub async fn client(
    conn: &Connection,
    provider: &ProviderRef,
    settings: &KubeClientSettings,
) -> Result<kube::Client, KubeError> {
    Ok(connected(conn, provider, settings).await?.0)
}

async fn config(
    conn: &Connection,
    provider: &ProviderRef,
    settings: &KubeClientSettings,
) -> Result<(kube::Config, String), KubeError> {
    let doc = kubeconfig(conn, provider, settings)?;
    let kc: Kubeconfig =
        serde_json::from_value(doc).map_err(|e| KubeError::Config(format!("kubeconfig for {}: {e}", conn.source)))?;
    let mut config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| KubeError::Config(format!("connecting to {}: {e}", conn.source)))?;
    if let Some(token) = &settings.bearer_token {
        config.auth_info.token = Some(token.expose_secret().to_string().into());
    } else if provider.scope.get(SCOPE_AUTH).map(String::as_str) == Some(AUTH_KIND) {
        let (cert, key) = kind_credentials(output(conn, OUTPUT_NAME)?).await?;
        config.auth_info.client_certificate_data = Some(cert);
        config.auth_info.client_key_data = Some(key.into());
    }
    config.default_retry = false;
    config.connect_timeout = Some(settings.connect_timeout);
    let endpoint = config.cluster_url.to_string();
    Ok((config, endpoint))
}

/// The client certificate and key of kind's admin kubeconfig for cluster `name`
/// (`kind get kubeconfig`; the binary is `TESSERA_KIND`, else `kind` on the PATH).
async fn kind_credentials(name: &str) -> Result<(String, String), KubeError> {
    let binary = std::env::var_os("TESSERA_KIND").filter(|v| !v.is_empty()).unwrap_or_else(|| "kind".into());
    let out = tokio::process::Command::new(&binary)
        .args(["get", "kubeconfig", "--name", name])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| KubeError::Config(format!("running `kind get kubeconfig --name {name}`: {e}")))?;
    let text = zeroize::Zeroizing::new(String::from_utf8_lossy(&out.stdout).into_owned());
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.lines().find(|l| l.starts_with("ERROR")).unwrap_or("kind failed");
        return Err(KubeError::Config(format!("`kind get kubeconfig --name {name}`: {line}")));
    }
    let kc = Kubeconfig::from_yaml(&text)
        .map_err(|_| KubeError::Config(format!("kind's kubeconfig for {name} is not a kubeconfig")))?;
    let user = kc.auth_infos.into_iter().find_map(|a| a.auth_info);
    let pair = user.and_then(|u| Some((u.client_certificate_data?, u.client_key_data?)));
    let (cert, key) =
        pair.ok_or_else(|| KubeError::Config(format!("kind's kubeconfig for {name} has no client certificate")))?;
    Ok((cert, key.expose_secret().to_string()))
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;
    use tessera_provider_api::{Address, Attrs};

    use super::*;

    fn connection() -> Connection {
        let mut outputs = Attrs::new();
        outputs.insert("endpoint".into(), json!("https://ABC.gr7.eu-west-1.eks.amazonaws.com"));
        outputs.insert("certificateAuthority".into(), json!("LS0tLS1CRUdJTi0tLS0t"));
        outputs.insert("name".into(), json!("core-aws"));
        Connection { source: Address::new("aws", "eks.cluster", "main"), id: "core-aws".into(), outputs }
    }

    fn provider(auth: &str) -> ProviderRef {
        let mut p = ProviderRef::connected("kube", Address::new("aws", "eks.cluster", "main"));
        p.region = "eu-west-1".into();
        p.scope.insert("auth".into(), auth.into());
        p
    }

    #[test]
    fn aws_clusters_authenticate_with_aws_eks_get_token() {
        let kc = kubeconfig(&connection(), &provider("aws"), &KubeClientSettings::default()).unwrap();
        assert_eq!(kc["clusters"][0]["cluster"]["server"], json!("https://ABC.gr7.eu-west-1.eks.amazonaws.com"));
        assert_eq!(kc["clusters"][0]["cluster"]["certificate-authority-data"], json!("LS0tLS1CRUdJTi0tLS0t"));
        let exec = &kc["users"][0]["user"]["exec"];
        assert_eq!(exec["command"], json!("aws"));
        assert_eq!(
            exec["args"],
            json!(["eks", "get-token", "--cluster-name", "core-aws", "--region", "eu-west-1", "--output", "json"])
        );
        let parsed: Result<Kubeconfig, _> = serde_json::from_value(kc);
        assert!(parsed.is_ok(), "kube-rs reads it: {parsed:?}");
    }

    #[test]
    fn azure_gcp_and_none_have_their_own_plugins() {
        let s = KubeClientSettings::default();
        let azure = kubeconfig(&connection(), &provider("azure"), &s).unwrap();
        assert_eq!(azure["users"][0]["user"]["exec"]["command"], json!("kubelogin"));
        assert_eq!(
            azure["users"][0]["user"]["exec"]["args"],
            json!(["get-token", "--login", "azurecli", "--server-id", AKS_SERVER_ID])
        );
        let gcp = kubeconfig(&connection(), &provider("gcp"), &s).unwrap();
        assert_eq!(gcp["users"][0]["user"]["exec"]["command"], json!("gke-gcloud-auth-plugin"));
        let none = kubeconfig(&connection(), &provider("none"), &s).unwrap();
        assert_eq!(none["users"][0]["user"], json!({}));
        let err = kubeconfig(&connection(), &provider("ldap"), &s).unwrap_err().to_string();
        assert!(err.contains("unknown Kubernetes authentication `ldap`"), "{err}");
        let mut no_auth = provider("aws");
        no_auth.scope.clear();
        assert!(kubeconfig(&connection(), &no_auth, &s).unwrap_err().to_string().contains("scope.auth"));
    }

    #[test]
    fn a_test_endpoint_and_token_replace_the_cluster_and_the_plugin() {
        let s = KubeClientSettings {
            endpoint: Some("http://127.0.0.1:8443".into()),
            bearer_token: Some(SecretString::from("t0ken".to_string())),
            ..KubeClientSettings::default()
        };
        let kc = kubeconfig(&connection(), &provider("aws"), &s).unwrap();
        assert_eq!(kc["clusters"][0]["cluster"], json!({"server": "http://127.0.0.1:8443"}));
        assert_eq!(kc["users"][0]["user"], json!({}));
        assert!(!kc.to_string().contains("t0ken"), "the token is never in the kubeconfig");
    }

    #[test]
    fn a_missing_output_is_named() {
        let mut conn = connection();
        conn.outputs.remove("certificateAuthority");
        let err = kubeconfig(&conn, &provider("aws"), &KubeClientSettings::default()).unwrap_err().to_string();
        assert!(err.contains("certificateAuthority"), "{err}");
    }

    #[tokio::test]
    async fn builds_a_client_for_a_plain_http_endpoint() {
        let s = KubeClientSettings {
            endpoint: Some("http://127.0.0.1:1".into()),
            bearer_token: Some(SecretString::from("t".to_string())),
            ..KubeClientSettings::default()
        };
        assert!(client(&connection(), &provider("aws"), &s).await.is_ok());
    }
}
