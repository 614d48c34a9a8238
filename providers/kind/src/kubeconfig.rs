//! The two public facts of a kind kubeconfig: the API server's address and its CA.
//!
//! `kind get kubeconfig` prints the admin kubeconfig, client key included. Only the cluster
//! entry is read from it (its `server` and `certificate-authority-data`, already base64 of the
//! PEM bundle, as the clouds report it); the user entry is never parsed.

use serde::Deserialize;

use crate::error::KindError;

#[derive(Deserialize)]
struct Kubeconfig {
    #[serde(default)]
    clusters: Vec<NamedCluster>,
}

#[derive(Deserialize)]
struct NamedCluster {
    name: String,
    cluster: ClusterEntry,
}

#[derive(Deserialize)]
struct ClusterEntry {
    server: String,
    #[serde(rename = "certificate-authority-data")]
    certificate_authority_data: String,
}

/// The endpoint and CA of cluster `name` (kind names its kubeconfig entry `kind-{name}`).
pub fn endpoint_and_ca(kubeconfig: &str, name: &str) -> Result<(String, String), KindError> {
    let parsed: Kubeconfig = serde_saphyr::from_str(kubeconfig)
        .map_err(|e| KindError::Local(format!("the kubeconfig kind gave for `{name}` is not readable: {e}")))?;
    let wanted = format!("kind-{name}");
    let entry = parsed.clusters.iter().find(|c| c.name == wanted).or(parsed.clusters.first());
    entry
        .map(|c| (c.cluster.server.clone(), c.cluster.certificate_authority_data.clone()))
        .ok_or_else(|| KindError::Local(format!("the kubeconfig kind gave for `{name}` has no cluster")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG: &str = "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: TFMwdExTMUNSVWRKVGc9PQ==
    server: https://127.0.0.1:40123
  name: kind-f-local
contexts:
- context:
    cluster: kind-f-local
    user: kind-f-local
  name: kind-f-local
current-context: kind-f-local
kind: Config
preferences: {}
users:
- name: kind-f-local
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
";

    #[test]
    fn reads_the_server_and_ca_of_the_named_cluster() {
        let (server, ca) = endpoint_and_ca(KUBECONFIG, "f-local").unwrap();
        assert_eq!(server, "https://127.0.0.1:40123");
        assert_eq!(ca, "TFMwdExTMUNSVWRKVGc9PQ==");
    }

    #[test]
    fn a_kubeconfig_without_clusters_is_an_error() {
        let err = endpoint_and_ca("apiVersion: v1\nkind: Config\n", "x").unwrap_err().to_string();
        assert!(err.contains("has no cluster"), "{err}");
        assert!(endpoint_and_ca(": : :", "x").is_err());
    }
}
