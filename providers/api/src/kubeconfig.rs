//! A kubeconfig that authenticates through an exec plugin (`aws eks get-token`, `kubelogin`,
//! `gke-gcloud-auth-plugin`): the shape every cloud backend's `Provider::kubeconfig` returns, so
//! no token is ever written to it.

use serde_json::{Value, json};

/// One cluster, one user whose credentials come from `command args…`, one context named `context`.
pub fn exec(context: &str, server: &str, ca: &str, command: &str, args: &[&str]) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": context, "cluster": { "server": server, "certificate-authority-data": ca } }],
        "users": [{ "name": context, "user": { "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": command,
            "args": args,
            "interactiveMode": "Never"
        } } }],
        "contexts": [{ "name": context, "context": { "cluster": context, "user": context } }],
        "current-context": context,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_names_the_cluster_and_the_exec_user() {
        let k = exec("aks-a", "https://a:443", "Q0E=", "kubelogin", &["get-token"]);
        assert_eq!(k["current-context"], "aks-a");
        assert_eq!(k["users"][0]["user"]["exec"]["command"], "kubelogin");
        assert_eq!(k["clusters"][0]["cluster"]["server"], "https://a:443");
        assert!(k["users"][0]["user"].get("token").is_none());
    }
}
