//! Request paths of the Kubernetes API, taken apart.
//!
//! ## Overview
//! `/api/v1/...` is the core group, `/apis/<group>/<version>/...` the others. Below a version,
//! `namespaces/<ns>/<plural>[/<name>[/<subresource>]]` is namespaced and
//! `<plural>[/<name>[/<subresource>]]` cluster-scoped; `namespaces/<name>/status` is the
//! Namespace's own subresource.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub plural: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Version,
    CoreVersions,
    Groups,
    Group(String),
    Discovery {
        group: String,
        version: String,
    },
    Resource(ResourcePath),
    /// `/api/v1/namespaces/<ns>/services/<service>/proxy/<path>`: the API server's proxy to a
    /// Service (`<service>` as written, e.g. `http:alertmanager:9093`).
    ServiceProxy {
        namespace: String,
        service: String,
        path: String,
    },
    Unknown,
}

pub fn parse(path: &str) -> Route {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["version"] => Route::Version,
        ["api"] => Route::CoreVersions,
        ["api", version] => Route::Discovery { group: String::new(), version: version.to_string() },
        ["api", "v1", "namespaces", ns, "services", service, "proxy", rest @ ..] => Route::ServiceProxy {
            namespace: ns.to_string(),
            service: service.to_string(),
            path: format!("/{}", rest.join("/")),
        },
        ["api", version, rest @ ..] => resource("", version, rest),
        ["apis"] => Route::Groups,
        ["apis", group] => Route::Group(group.to_string()),
        ["apis", group, version] => Route::Discovery { group: group.to_string(), version: version.to_string() },
        ["apis", group, version, rest @ ..] => resource(group, version, rest),
        _ => Route::Unknown,
    }
}

fn resource(group: &str, version: &str, rest: &[&str]) -> Route {
    let (namespace, tail) = match rest {
        ["namespaces", _, sub] if *sub == "status" || *sub == "finalize" => (None, rest),
        ["namespaces", ns, tail @ ..] if !tail.is_empty() => (Some(ns.to_string()), tail),
        _ => (None, rest),
    };
    match tail {
        [plural, more @ ..] if more.len() <= 2 => Route::Resource(ResourcePath {
            group: group.to_string(),
            version: version.to_string(),
            namespace,
            plural: plural.to_string(),
            name: more.first().map(|s| s.to_string()),
            subresource: more.get(1).map(|s| s.to_string()),
        }),
        _ => Route::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourcePath {
        match parse(path) {
            Route::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn namespaced_cluster_and_subresource_paths() {
        let ds = res("/apis/apps/v1/namespaces/monitoring/daemonsets/node-exporter/status");
        assert_eq!(
            (ds.group.as_str(), ds.namespace.as_deref(), ds.plural.as_str()),
            ("apps", Some("monitoring"), "daemonsets")
        );
        assert_eq!((ds.name.as_deref(), ds.subresource.as_deref()), (Some("node-exporter"), Some("status")));
        let ns = res("/api/v1/namespaces/logging");
        assert_eq!((ns.namespace, ns.plural.as_str(), ns.name.as_deref()), (None, "namespaces", Some("logging")));
        let ns_status = res("/api/v1/namespaces/logging/status");
        assert_eq!((ns_status.plural.as_str(), ns_status.subresource.as_deref()), ("namespaces", Some("status")));
        let all = res("/apis/apps/v1/daemonsets");
        assert_eq!((all.namespace, all.name), (None, None));
        assert_eq!(parse("/apis/apps/v1"), Route::Discovery { group: "apps".into(), version: "v1".into() });
        assert_eq!(parse("/openapi/v3"), Route::Unknown);
        assert_eq!(
            parse("/api/v1/namespaces/monitoring/services/http:am:9093/proxy/api/v2/status"),
            Route::ServiceProxy {
                namespace: "monitoring".into(),
                service: "http:am:9093".into(),
                path: "/api/v2/status".into()
            }
        );
    }
}
