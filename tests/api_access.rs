//! `apiAccess` (who reaches a cluster's Kubernetes API) from the spec to each cloud:
//! - validation: the shared rules at `file:line:col`, each cloud's limit, and the warnings (an
//!   API open to the whole internet; how core services are installed through a private one);
//! - EKS on moto: `endpointPublicAccess`, `endpointPrivateAccess` and `publicAccessCidrs` as the
//!   SDK describes the cluster, changed in place;
//! - AKS against the ARM fixture (bodies checked against the 2024-09-01 description):
//!   `apiServerAccessProfile`, ranges changed in place, private ↔ public a replacement;
//! - GKE against the GKE fixture (bodies checked against the discovery document):
//!   `controlPlaneEndpointsConfig`, authorized networks changed in place, private nodes with a
//!   private endpoint, the public endpoint's change a replacement.

mod common;

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use tessera::spec;
use tessera::state::SqliteStore;
use tessera_aks_fixture::AksFixture;
use tessera_gke_fixture::GkeFixture;
use tessera_sim::Faults;

fn fleet(provider: &str, access: &str) -> String {
    let placement = match provider {
        "eks" => "{ name: c, provider: eks, region: eu-west-1 }",
        "aks" => {
            "{ name: c, provider: aks, region: westeurope, scope: { subscription: 6f1c2a3b-0d4e-4f5a-8b9c-0123456789ab } }"
        }
        "gke" => "{ name: c, provider: gke, region: europe-west4, scope: { project: acme-platform } }",
        _ => "{ name: c, provider: kind }",
    };
    format!(
        r#"apiVersion: tessera.dev/v1alpha1
kind: Fleet
metadata: {{ name: api }}
spec:
  kubernetes: {{ version: "1.31" }}
{access}  nodePools:
    - name: general
      machine: {{ vcpu: 4, memoryGiB: 16 }}
      scale: {{ min: 1, max: 3 }}
  coreServices:
    monitoring: {{ enabled: false }}
    logging: {{ enabled: false, auditLogs: false }}
  placements:
    - {placement}
"#
    )
}

fn problems(src: &str) -> Vec<String> {
    match spec::load_str(Path::new("f.yaml"), src) {
        Ok(_) => Vec::new(),
        Err(e) => e.lines(),
    }
}

fn warnings(src: &str) -> Vec<String> {
    match spec::load_str(Path::new("f.yaml"), src) {
        Ok(f) => f
            .warnings
            .iter()
            .map(|w| format!("{}:{}: {} ({})", w.line, w.column, w.message, w.help.clone().unwrap_or_default()))
            .collect(),
        Err(e) => panic!("{:#?}", e.lines()),
    }
}

/// `line:col` of the first `token` in `src`; a `|` in the token marks the place within it.
fn at(src: &str, token: &str) -> String {
    let (before, after) = token.split_once('|').unwrap_or(("", token));
    let text = format!("{before}{after}");
    let found = src.find(&text).unwrap_or_else(|| panic!("`{text}` is not in the spec"));
    let offset = found + before.len();
    let line = src[..offset].matches('\n').count() + 1;
    let col = src[..offset].rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("{line}:{col}")
}

#[test]
fn invalid_api_access_is_refused_where_it_is_written() {
    // (what, apiAccess block, token the problem points at, what it says)
    let cases = [
        ("no address at all", "  apiAccess: { public: false, private: false }\n", "false, private", "no address"),
        (
            "ranges with no public address",
            "  apiAccess: { public: false, allowedCidrs: [10.0.0.0/8] }\n",
            "[10.0",
            "`public` is false",
        ),
        ("an empty range list", "  apiAccess: { allowedCidrs: [] }\n", "[]", "nobody could use"),
        (
            "not a CIDR",
            "  apiAccess: { allowedCidrs: [198.51.100.0/24, 203.0.113.0/33] }\n",
            "|203",
            "invalid allowed range `203.0.113.0/33`",
        ),
        (
            "host bits",
            "  apiAccess: { allowedCidrs: [203.0.113.7/24] }\n",
            "|203",
            "`203.0.113.7/24` has host bits set",
        ),
        (
            "a range twice",
            "  apiAccess: { allowedCidrs: [203.0.113.0/24, 198.51.100.0/24, 203.0.113.0/24] }\n",
            "198.51.100.0/24, |203",
            "listed twice",
        ),
        ("an unknown key", "  apiAccess: { publicCidrs: [203.0.113.0/24] }\n", "publicCidrs", "publicCidrs"),
    ];
    for (what, block, token, needle) in cases {
        let src = fleet("eks", block);
        let want = format!("f.yaml:{}: ", at(&src, token));
        let got = problems(&src);
        assert!(
            got.iter().any(|p| p.starts_with(&want) && p.contains(needle)),
            "{what}: want {want}…{needle}, got {got:#?}"
        );
    }
}

#[test]
fn each_cloud_refuses_more_ranges_than_it_allows_at_the_block() {
    for (provider, limit) in [("eks", 40), ("aks", 200), ("gke", 50)] {
        let ranges =
            |n: usize| (0..n).map(|i| format!("10.{}.{}.0/24", i / 256, i % 256)).collect::<Vec<_>>().join(", ");
        let fits = fleet(provider, &format!("  apiAccess: {{ allowedCidrs: [{}] }}\n", ranges(limit)));
        assert_eq!(problems(&fits), Vec::<String>::new(), "{provider}: {limit} ranges fit");
        let over = fleet(provider, &format!("  apiAccess: {{ allowedCidrs: [{}] }}\n", ranges(limit + 1)));
        let want = format!("f.yaml:{}: ", at(&over, "{ allowedCidrs"));
        let got = problems(&over);
        assert!(
            got.iter().any(|p| p.starts_with(&want) && p.contains(&format!("allows {limit} per cluster"))),
            "{provider}: {got:#?}"
        );
    }
}

#[test]
fn an_api_open_to_the_internet_is_a_warning_on_every_cloud_and_a_restricted_one_is_not() {
    for provider in ["eks", "aks", "gke"] {
        let open = warnings(&fleet(provider, ""));
        assert!(open.iter().any(|w| w.contains("open to the whole internet")), "{provider}: {open:#?}");
        let restricted = warnings(&fleet(provider, "  apiAccess: { allowedCidrs: [203.0.113.0/24] }\n"));
        assert!(!restricted.iter().any(|w| w.contains("internet")), "{provider}: {restricted:#?}");
        let private = warnings(&fleet(provider, "  apiAccess: { public: false }\n"));
        assert!(
            private
                .iter()
                .any(|w| w.contains("no public address") && w.contains("run it inside the cluster's network")),
            "{provider}: the way core services are installed is said: {private:#?}"
        );
    }
    // The union of the ranges counts, however it is written.
    for ranges in ["[0.0.0.0/1, 128.0.0.0/1]", "[0.0.0.0/00]", "[10.0.0.0/8, 11.0.0.0/8, 12.0.0.0/6]"] {
        let w = warnings(&fleet("eks", &format!("  apiAccess: {{ allowedCidrs: {ranges} }}\n")));
        assert!(w.iter().any(|w| w.contains("Kubernetes API is open to")), "{ranges}: {w:#?}");
    }
    let canonical =
        spec::load_str(Path::new("f.yaml"), &fleet("eks", "  apiAccess: { allowedCidrs: [10.0.0.0/08] }\n"))
            .unwrap_or_else(|e| panic!("{:#?}", e.lines()));
    assert_eq!(canonical.placements[0].cluster.api_access.allowed_cidrs, ["10.0.0.0/8"]);
    // `private: false` changes nothing where the cloud's network always reaches the API.
    for provider in ["aks", "gke"] {
        let w = warnings(&fleet(provider, "  apiAccess: { private: false }\n"));
        assert!(w.iter().any(|w| w.contains("`private: false` changes nothing")), "{provider}: {w:#?}");
    }
    assert!(
        !warnings(&fleet("eks", "  apiAccess: { private: false }\n")).iter().any(|w| w.contains("changes nothing"))
    );
    // kind serves its API on this machine: the block is said to be unused, not silently dropped.
    let kind = warnings(&fleet("kind", "  apiAccess: { public: false }\n"));
    assert!(kind.iter().any(|w| w.contains("`apiAccess` is not used")), "{kind:#?}");
    assert!(!warnings(&fleet("kind", "")).iter().any(|w| w.contains("apiAccess")));
}

#[test]
fn a_placement_override_replaces_the_templates_api_access() {
    let src = fleet("eks", "  apiAccess: { allowedCidrs: [203.0.113.0/24] }\n")
        .replace("region: eu-west-1 }", "region: eu-west-1, overrides: { apiAccess: { public: false } } }");
    let f = spec::load_str(Path::new("f.yaml"), &src).unwrap_or_else(|e| panic!("{:#?}", e.lines()));
    let access = &f.placements[0].cluster.api_access;
    assert!(!access.public && access.private, "{access:?}");
}

// ---- EKS on moto ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eks_endpoint_access_is_created_and_changed_in_place_on_moto() {
    use common::Harness;
    use common::moto::{Moto, aws};
    use tessera::plan::ActionKind;

    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let h = Harness::with_registry(Faults::default(), store, |r| r.with_eks(moto.eks_settings()));
    let restricted = fleet("eks", "  apiAccess: { allowedCidrs: [203.0.113.0/24, 198.51.100.7/32], private: true }\n");
    let f = common::load(&restricted);
    let report = h.apply(&f).await;
    assert!(report.is_success(), "{report:#?}");

    let a = aws(&moto, "eu-west-1").await;
    let describe = || async {
        let cl = a.eks.describe_cluster().name("api-c").send().await.unwrap().cluster().unwrap().clone();
        let vpc = cl.resources_vpc_config().unwrap().clone();
        let mut cidrs = vpc.public_access_cidrs().to_vec();
        cidrs.sort();
        (vpc.endpoint_public_access(), vpc.endpoint_private_access(), cidrs)
    };
    assert_eq!(describe().await, (true, true, vec!["198.51.100.7/32".to_string(), "203.0.113.0/24".to_string()]));
    let again = h.plan(&f).await;
    assert!(!again.has_changes(), "{}", tessera::plan::render_human(&again));

    // Private only: one in-place update of the cluster (UpdateClusterConfig), nothing replaced.
    let private = common::load(&fleet("eks", "  apiAccess: { public: false }\n"));
    let plan = h.plan(&private).await;
    let kinds: Vec<(String, ActionKind)> = plan.actions.iter().map(|a| (a.address.to_string(), a.kind)).collect();
    assert_eq!(
        kinds,
        [("c/eks.cluster/main".to_string(), ActionKind::Update)],
        "{}",
        tessera::plan::render_human(&plan)
    );
    let report = h.apply_plan(&plan, &private).await;
    assert!(report.is_success(), "{report:#?}");
    assert_eq!(describe().await, (false, true, vec!["0.0.0.0/0".to_string()]));
    // moto's UpdateClusterConfig replaces the whole `resourcesVpcConfig` with what was sent, so
    // it drops the subnet ids that real EKS keeps: the re-plan's only change is that artefact.
    let again = h.plan(&private).await;
    let changed: Vec<&str> = again.actions.iter().flat_map(|a| a.changes.iter().map(|c| c.field.as_str())).collect();
    assert!(
        changed.iter().all(|f| ["subnetIds", "cluster", "tags"].contains(f)),
        "nothing but moto's dropped subnets: {}",
        tessera::plan::render_human(&again)
    );
}

// ---- AKS against the ARM fixture ----

fn access_profile(fixture: &AksFixture) -> Value {
    let clusters = fixture.clusters();
    assert_eq!(clusters.len(), 1, "{clusters:#?}");
    clusters[0]["properties"]["apiServerAccessProfile"].clone()
}

#[test]
fn aks_authorized_ranges_change_in_place_and_a_private_cluster_is_a_new_cluster() {
    let fixture = AksFixture::builder().operation_time(std::time::Duration::from_millis(100)).start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let r = common::chaos::Run {
        dir: dir.path().to_path_buf(),
        env: vec![
            ("AZURE_ENDPOINT".into(), fixture.url()),
            ("AZURE_ACCESS_TOKEN".into(), "fixture-token".into()),
            ("TESSERA_POLL_INTERVAL".into(), "20ms".into()),
        ],
    };
    let file = dir.path().join("aks.yaml");
    let write = |access: &str| std::fs::write(&file, fleet("aks", access)).unwrap();

    write("  apiAccess: { allowedCidrs: [203.0.113.0/24] }\n");
    r.apply(&file).unwrap();
    let p = access_profile(&fixture);
    assert_eq!(p["authorizedIPRanges"], serde_json::json!(["203.0.113.0/24"]), "{p}");
    assert_ne!(p["enablePrivateCluster"], true);
    assert!(r.plan_is_empty(&file));

    // New ranges: the cluster is PUT as read, under its eTag, with the new list; no delete.
    let before = fixture.requests().len();
    write("  apiAccess: { allowedCidrs: [203.0.113.0/24, 198.51.100.0/24] }\n");
    r.apply(&file).unwrap();
    let log = fixture.requests();
    assert!(log[before..].iter().all(|l| l.method != "DELETE"), "ranges change in place");
    assert!(
        log[before..]
            .iter()
            .any(|l| l.method == "PUT" && l.path.contains("managedClusters") && l.if_match.is_some() && l.status < 300),
        "an eTag-guarded PUT of the cluster"
    );
    assert_eq!(
        access_profile(&fixture)["authorizedIPRanges"],
        serde_json::json!(["198.51.100.0/24", "203.0.113.0/24"])
    );
    assert!(r.plan_is_empty(&file));

    // Private: AKS cannot make a cluster private in place, so the plan replaces it.
    write("  apiAccess: { public: false }\n");
    let out = r
        .tessera()
        .stdout(std::process::Stdio::piped())
        .args(["plan", "--output", "json"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cluster = v["plan"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["address"] == "c/aks.cluster/main")
        .cloned()
        .unwrap_or_default();
    assert_eq!(cluster["kind"], "replace", "{}", serde_json::to_string_pretty(&v["plan"]).unwrap());
    r.apply(&file).unwrap();
    let p = access_profile(&fixture);
    assert_eq!(p["enablePrivateCluster"], true, "{p}");
    assert!(p.get("authorizedIPRanges").is_none(), "{p}");
    assert!(fixture.clusters()[0]["properties"]["privateFQDN"].is_string());
    assert!(r.plan_is_empty(&file));
    fixture.assert_no_rejections();
}

// ---- GKE against the GKE fixture ----

#[test]
fn gke_authorized_networks_change_in_place_and_a_private_endpoint_brings_private_nodes() {
    let fixture = GkeFixture::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let r = common::chaos::Run {
        dir: dir.path().to_path_buf(),
        env: vec![("GKE_ENDPOINT".into(), fixture.url()), ("TESSERA_POLL_INTERVAL".into(), "20ms".into())],
    };
    let file = dir.path().join("gke.yaml");
    let write = |access: &str| std::fs::write(&file, fleet("gke", access)).unwrap();
    let cluster = || fixture.cluster("projects/acme-platform/locations/europe-west4/clusters/api-c").unwrap();

    write("  apiAccess: { allowedCidrs: [203.0.113.0/24] }\n");
    r.apply(&file).unwrap();
    let ip = cluster()["controlPlaneEndpointsConfig"]["ipEndpointsConfig"].clone();
    assert_eq!(ip["enablePublicEndpoint"], true, "{ip}");
    assert_eq!(ip["authorizedNetworksConfig"]["enabled"], true, "{ip}");
    assert_eq!(ip["authorizedNetworksConfig"]["cidrBlocks"], serde_json::json!([{ "cidrBlock": "203.0.113.0/24" }]));
    assert!(r.plan_is_empty(&file));

    // Open to all: one in-place update (desiredControlPlaneEndpointsConfig).
    write("");
    r.apply(&file).unwrap();
    let ip = cluster()["controlPlaneEndpointsConfig"]["ipEndpointsConfig"].clone();
    // proto3 JSON leaves out false and empty lists.
    assert_ne!(ip["authorizedNetworksConfig"]["enabled"], true, "{ip}");
    assert!(ip["authorizedNetworksConfig"]["cidrBlocks"].as_array().is_none_or(Vec::is_empty), "{ip}");
    assert!(
        fixture.requests().iter().any(|q| q.body.pointer("/update/desiredControlPlaneEndpointsConfig").is_some()),
        "changed in place"
    );
    assert!(r.plan_is_empty(&file));

    // No public endpoint: a new cluster, with private nodes (GKE refuses one without the other).
    write("  apiAccess: { public: false }\n");
    r.apply(&file).unwrap();
    let c = cluster();
    assert_eq!(c["controlPlaneEndpointsConfig"]["ipEndpointsConfig"]["enablePublicEndpoint"], false, "{c}");
    assert_eq!(c["networkConfig"]["defaultEnablePrivateNodes"], true, "{c}");
    assert!(r.plan_is_empty(&file));
    fixture.assert_no_rejections();
}
