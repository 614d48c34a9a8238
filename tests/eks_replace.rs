//! Replacements on EKS, end to end against moto: a network CIDR change, a node pool machine
//! change, a region change and a cluster that the cloud reports FAILED each converge in one
//! apply, the next plan is clean, and nothing is left behind or duplicated, as the AWS SDK sees
//! it (not as Tessera's state says).
//!
//! Tessera talks to moto through a small forwarding proxy that records every call (the count per
//! apply is part of what is tested) and, on request, reports a generation-0 cluster as FAILED:
//! moto itself never fails a cluster.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use aws_sdk_ec2::types::Filter;
use common::Harness;
use common::moto::{Aws, Moto, aws};
use serde_json::Value;
use tessera::exec::Event;
use tessera::plan::{ActionKind, Plan, render_human};
use tessera::spec::Fleet;
use tessera::state::{SqliteStore, StateStore};
use tessera_provider_api::{ProviderExt, Replacement, TAG_GENERATION};
use tessera_sim::Faults;

const FLEET: &str = "eks-move";
const CLUSTER: &str = "eks-move-eu";

fn fleet(cidr: &str, vcpu: u32, region: &str) -> Fleet {
    common::load(&common::without_core_services(&format!(
        "apiVersion: tessera.dev/v1alpha1
kind: Fleet
metadata: {{ name: {FLEET} }}
spec:
  kubernetes: {{ version: \"1.31\" }}
  network: {{ cidr: {cidr} }}
  nodePools:
    - name: system
      machine: {{ vcpu: {vcpu}, memoryGiB: {memory}, arch: amd64 }}
      scale: {{ min: 2, max: 4 }}
      labels: {{ tier: system }}
  placements:
    - {{ name: eu, provider: eks, region: {region} }}
",
        memory = vcpu * 4
    )))
}

/// Forwards every request to moto, recording it; optionally reports clusters of generation 0
/// as FAILED in DescribeCluster. One request per connection (`Connection: close` both ways), so
/// there is no keep-alive state to get wrong.
struct Proxy {
    url: String,
    calls: Arc<Mutex<Vec<String>>>,
    fail_first_generation: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let upstream = upstream.trim_start_matches("http://").to_string();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let fail = Arc::new(AtomicBool::new(false));
        let (c, f) = (calls.clone(), fail.clone());
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (upstream, c, f) = (upstream.clone(), c.clone(), f.clone());
                thread::spawn(move || forward(conn, &upstream, &c, &f));
            }
        });
        Self { url, calls, fail_first_generation: fail }
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn settings(&self, moto: &Moto) -> tessera_eks::EksSettings {
        tessera_eks::EksSettings { endpoint_url: Some(self.url.clone()), ..moto.eks_settings() }
    }
}

/// `CreateVpc` for the query APIs (EC2, IAM), `POST /clusters` for EKS's REST API.
fn label(method: &str, url: &str, body: &[u8]) -> String {
    let body = String::from_utf8_lossy(body);
    match body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
        Some(action) => action.to_string(),
        None => format!("{method} {}", url.split('?').next().unwrap_or(url)),
    }
}

/// One HTTP message read to its end: the head's lines and the body, framed by `Content-Length`;
/// without one, a request has no body and a response runs to EOF.
fn read_message(stream: &mut TcpStream, request: bool) -> Option<(Vec<String>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let split = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head: Vec<String> = String::from_utf8_lossy(&buf[..split]).split("\r\n").map(str::to_string).collect();
    let mut body = buf[split + 4..].to_vec();
    let length = head.iter().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok()).flatten()
    });
    match length {
        Some(len) => {
            while body.len() < len {
                let n = stream.read(&mut chunk).ok().filter(|n| *n > 0)?;
                body.extend_from_slice(&chunk[..n]);
            }
        }
        None if request => body.clear(),
        None => {
            stream.read_to_end(&mut body).ok()?;
        }
    }
    Some((head, body))
}

fn framing(line: &str) -> bool {
    let name = line.split(':').next().unwrap_or_default().trim().to_ascii_lowercase();
    ["connection", "content-length", "transfer-encoding", "keep-alive", "expect"].contains(&name.as_str())
}

fn write_message(stream: &mut TcpStream, first: &str, head: &[String], body: &[u8]) -> std::io::Result<()> {
    let mut out = format!("{first}\r\n");
    for line in head.iter().filter(|l| !framing(l)) {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()));
    stream.write_all(out.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

fn forward(mut client: TcpStream, upstream: &str, calls: &Mutex<Vec<String>>, fail: &AtomicBool) {
    let Some((head, body)) = read_message(&mut client, true) else { return };
    let request_line = head[0].clone();
    let mut parts = request_line.split(' ');
    let (method, url) = (parts.next().unwrap_or_default().to_string(), parts.next().unwrap_or_default().to_string());
    calls.lock().unwrap().push(label(&method, &url, &body));
    // HTTP/1.0 upstream: the whole response, unchunked, then EOF.
    let mut up = TcpStream::connect(upstream).expect("moto is up");
    write_message(&mut up, &format!("{method} {url} HTTP/1.0"), &head[1..], &body).expect("send to moto");
    let (reply_head, mut reply) = read_message(&mut up, false).expect("moto's response");
    let status = reply_head[0].split(' ').nth(1).unwrap_or_default().to_string();
    let path: Vec<&str> = url.split('?').next().unwrap_or("").trim_matches('/').split('/').collect();
    if fail.load(Ordering::SeqCst) && method == "GET" && status == "200" && path.len() == 2 && path[0] == "clusters" {
        reply = fail_first_generation(&reply);
    }
    let status_line = format!("HTTP/1.1 {}", reply_head[0].split_once(' ').map_or("502 Bad Gateway", |(_, s)| s));
    let _ = write_message(&mut client, &status_line, &reply_head[1..], &reply);
}

/// A DescribeCluster response with a generation-0 cluster reported FAILED.
fn fail_first_generation(body: &[u8]) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<Value>(body) else { return body.to_vec() };
    let cluster = &mut v["cluster"];
    if cluster["tags"].get(TAG_GENERATION).is_none() && cluster.is_object() {
        cluster["status"] = "FAILED".into();
        cluster["health"] = serde_json::json!({ "issues": [{ "code": "ClusterUnreachable", "message": "injected" }] });
    }
    serde_json::to_vec(&v).unwrap_or_else(|_| body.to_vec())
}

fn fleet_tag() -> Filter {
    Filter::builder().name("tag:tessera.dev/fleet").values(FLEET).build()
}

/// What the fleet has in one region, as the SDK lists it.
#[derive(Debug)]
struct Seen {
    clusters: Vec<String>,
    vpcs: Vec<aws_sdk_ec2::types::Vpc>,
    subnets: Vec<aws_sdk_ec2::types::Subnet>,
    nodegroups: Vec<aws_sdk_eks::types::Nodegroup>,
}

async fn seen(a: &Aws) -> Seen {
    let clusters = a.eks.list_clusters().send().await.unwrap().clusters().to_vec();
    let vpcs = a.ec2.describe_vpcs().filters(fleet_tag()).send().await.unwrap().vpcs().to_vec();
    let subnets = a.ec2.describe_subnets().filters(fleet_tag()).send().await.unwrap().subnets().to_vec();
    let mut nodegroups = Vec::new();
    for cluster in &clusters {
        for name in a.eks.list_nodegroups().cluster_name(cluster).send().await.unwrap().nodegroups() {
            let ng = a.eks.describe_nodegroup().cluster_name(cluster).nodegroup_name(name).send().await.unwrap();
            nodegroups.push(ng.nodegroup().unwrap().clone());
        }
    }
    Seen { clusters, vpcs, subnets, nodegroups }
}

async fn cluster(a: &Aws) -> aws_sdk_eks::types::Cluster {
    a.eks.describe_cluster().name(CLUSTER).send().await.unwrap().cluster().unwrap().clone()
}

fn ec2_generation(tags: &[aws_sdk_ec2::types::Tag]) -> Option<&str> {
    tags.iter().find(|t| t.key() == Some(TAG_GENERATION)).and_then(|t| t.value())
}

fn harness(settings: tessera_eks::EksSettings) -> Harness {
    Harness::with_registry(Faults::default(), Arc::new(SqliteStore::in_memory().unwrap()), |r| r.with_eks(settings))
}

/// Applies `plan` and checks that it converged: success, then a plan with nothing to do.
async fn converge(h: &Harness, plan: &Plan, fleet: &Fleet) {
    let report = h.apply_plan(plan, fleet).await;
    assert!(report.is_success(), "{report:#?}");
    let again = h.plan(fleet).await;
    assert!(!again.has_changes() && again.drift.is_empty(), "not clean after one apply:\n{}", render_human(&again));
}

/// State holds exactly the 8 resources of one placement, none deposed, each id live in moto.
async fn state_matches(h: &Harness, s: &Seen, region: &str) {
    let records = h.store.resources().await.unwrap();
    assert_eq!(records.len(), 8, "{records:#?}");
    assert!(records.iter().all(|r| !r.deposed && r.provider.region == region), "{records:#?}");
    let id = |rtype: &str| -> Vec<String> {
        let mut ids: Vec<String> = records.iter().filter(|r| r.address.rtype == rtype).map(|r| r.id.clone()).collect();
        ids.sort();
        ids
    };
    assert_eq!(id("eks.vpc"), [s.vpcs[0].vpc_id().unwrap()]);
    let mut subnets: Vec<String> = s.subnets.iter().map(|x| x.subnet_id().unwrap().to_string()).collect();
    subnets.sort();
    assert_eq!(id("eks.subnet"), subnets);
    assert_eq!(id("eks.cluster"), s.clusters);
}

fn kinds(plan: &Plan) -> Vec<(String, ActionKind, Option<Replacement>)> {
    let mut out: Vec<_> = plan.actions.iter().map(|a| (a.address.to_string(), a.kind, a.replacement)).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// One cluster with one pool: the calls an apply makes, counted at the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cluster_with_one_pool_applies_in_few_calls() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.url);
    let h = harness(proxy.settings(&moto));
    let f = fleet("10.60.0.0/16", 4, "eu-west-1");
    let plan = h.plan(&f).await;
    assert_eq!(plan.count(ActionKind::Create), 8);
    let before = proxy.calls().len();
    let report = h.apply_plan(&plan, &f).await;
    assert!(report.is_success(), "{report:#?}");
    let calls: Vec<String> = proxy.calls()[before..].to_vec();
    let mut tally = std::collections::BTreeMap::<String, usize>::new();
    for c in &calls {
        *tally.entry(c.replace(CLUSTER, "{cluster}")).or_default() += 1;
    }
    println!("{} calls for one apply of 8 resources: {tally:#?}", calls.len());
    // The creates themselves (12 with the policy attachments), one ownership look-up per VPC and
    // subnet (EC2 has no idempotency token for them), and no describe after a create whose
    // response already says everything.
    assert!(calls.len() <= 21, "{} calls: {tally:#?}", calls.len());
    for gone in ["GetRole", "ListAttachedRolePolicies", "DescribeVpcs"] {
        let n = tally.get(gone).copied().unwrap_or(0);
        assert!(n <= usize::from(gone == "DescribeVpcs"), "{gone} called {n} times: {tally:#?}");
    }
    assert_eq!(tally.get("DescribeSubnets"), Some(&3), "one idempotency look-up per subnet: {tally:#?}");

    let refresh = proxy.calls().len();
    assert!(!h.plan(&f).await.has_changes());
    println!("{} calls for the re-plan's refresh", proxy.calls().len() - refresh);
}

/// `network.cidr` changes: the VPC and subnets are replaced (create first), the cluster too,
/// since it references the subnet ids (destroy first: its name is unique), and its node group
/// with it. One VPC remains, the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_cidr_change_replaces_the_network_and_the_cluster() {
    let moto = Moto::start();
    let h = harness(moto.eks_settings());
    let a = aws(&moto, "eu-west-1").await;
    let first = fleet("10.60.0.0/16", 4, "eu-west-1");
    converge(&h, &h.plan(&first).await, &first).await;
    let old = seen(&a).await;
    let old_vpc = old.vpcs[0].vpc_id().unwrap().to_string();

    let moved = fleet("10.70.0.0/16", 4, "eu-west-1");
    let plan = h.plan(&moved).await;
    let cbd = Some(Replacement::CreateBeforeDestroy);
    let dbc = Some(Replacement::DestroyBeforeCreate);
    assert_eq!(
        kinds(&plan),
        [
            ("eu/eks.cluster/main".to_string(), ActionKind::Replace, dbc),
            ("eu/eks.nodegroup/system".to_string(), ActionKind::Replace, dbc),
            ("eu/eks.subnet/eu-west-1a".to_string(), ActionKind::Replace, cbd),
            ("eu/eks.subnet/eu-west-1b".to_string(), ActionKind::Replace, cbd),
            ("eu/eks.subnet/eu-west-1c".to_string(), ActionKind::Replace, cbd),
            ("eu/eks.vpc/main".to_string(), ActionKind::Replace, cbd),
        ],
        "{}",
        render_human(&plan)
    );
    let text = render_human(&plan);
    assert!(text.contains("known after apply"), "the new subnet ids are unknown until they exist:\n{text}");
    converge(&h, &plan, &moved).await;

    let s = seen(&a).await;
    assert_eq!(s.vpcs.len(), 1, "exactly one VPC: {:?}", s.vpcs);
    let vpc = &s.vpcs[0];
    assert_ne!(vpc.vpc_id(), Some(old_vpc.as_str()), "the old VPC is gone");
    assert_eq!(vpc.cidr_block(), Some("10.70.0.0/16"));
    assert_eq!(ec2_generation(vpc.tags()), Some("1"));
    assert!(a.ec2.describe_vpcs().vpc_ids(&old_vpc).send().await.is_err(), "the old VPC still exists");
    assert_eq!(s.subnets.len(), 3, "{:?}", s.subnets);
    let mut cidrs: Vec<&str> = s.subnets.iter().filter_map(|x| x.cidr_block()).collect();
    cidrs.sort_unstable();
    assert_eq!(cidrs, ["10.70.0.0/20", "10.70.16.0/20", "10.70.32.0/20"]);
    assert!(s.subnets.iter().all(|x| x.vpc_id() == vpc.vpc_id() && ec2_generation(x.tags()) == Some("1")));
    let mut subnet_ids: Vec<&str> = s.subnets.iter().filter_map(|x| x.subnet_id()).collect();
    subnet_ids.sort_unstable();

    assert_eq!(s.clusters, [CLUSTER]);
    let cl = cluster(&a).await;
    assert_eq!(cl.tags().unwrap()[TAG_GENERATION], "1");
    let mut cluster_subnets = cl.resources_vpc_config().unwrap().subnet_ids().to_vec();
    cluster_subnets.sort();
    assert_eq!(cluster_subnets, subnet_ids);
    assert_eq!(s.nodegroups.len(), 1, "{:?}", s.nodegroups);
    let mut ng_subnets = s.nodegroups[0].subnets().to_vec();
    ng_subnets.sort();
    assert_eq!(ng_subnets, subnet_ids);
    state_matches(&h, &s, "eu-west-1").await;
}

/// A pool's machine changes: the node group is replaced under a new name, the new one made
/// before the old one is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_change_replaces_the_node_group_create_first() {
    let moto = Moto::start();
    let h = harness(moto.eks_settings());
    let a = aws(&moto, "eu-west-1").await;
    let first = fleet("10.60.0.0/16", 4, "eu-west-1");
    converge(&h, &h.plan(&first).await, &first).await;
    let old = seen(&a).await.nodegroups[0].nodegroup_name().unwrap().to_string();

    let bigger = fleet("10.60.0.0/16", 8, "eu-west-1");
    let plan = h.plan(&bigger).await;
    assert_eq!(
        kinds(&plan),
        [("eu/eks.nodegroup/system".to_string(), ActionKind::Replace, Some(Replacement::CreateBeforeDestroy))],
        "{}",
        render_human(&plan)
    );
    let events_before = h.events.events().len();
    converge(&h, &plan, &bigger).await;

    let done: Vec<String> = h.events.events()[events_before..]
        .iter()
        .filter_map(|e| match e {
            Event::StepSucceeded { address, op, .. } if address == "eu/eks.nodegroup/system" => Some(op.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(done, ["replace", "delete"], "the new group first, then the old one goes");
    let s = seen(&a).await;
    assert_eq!(s.nodegroups.len(), 1, "the old group is gone: {:?}", s.nodegroups);
    let ng = &s.nodegroups[0];
    assert_ne!(ng.nodegroup_name(), Some(old.as_str()));
    assert_eq!(ng.instance_types(), ["m6i.2xlarge"]);
    assert_eq!(ng.tags().unwrap()[TAG_GENERATION], "1");
    assert_eq!(s.clusters, [CLUSTER]);
    assert_eq!(s.vpcs.len(), 1);
    state_matches(&h, &s, "eu-west-1").await;
}

/// A placement's region changes: everything is made again in the new region (IAM role names are
/// global, so the roles go first and come back under the same names) and nothing is left in the
/// old one. This found two executor bugs, now fixed: the delete half of a replacement ran
/// against the new provider (the new region), where it found nothing and left the old objects
/// behind; and a destroy-first delete tried to resolve the replacement's references.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_change_moves_everything() {
    let moto = Moto::start();
    let h = harness(moto.eks_settings());
    let (old, new) = (aws(&moto, "eu-west-1").await, aws(&moto, "eu-central-1").await);
    let first = fleet("10.60.0.0/16", 4, "eu-west-1");
    converge(&h, &h.plan(&first).await, &first).await;

    let moved = fleet("10.60.0.0/16", 4, "eu-central-1");
    let plan = h.plan(&moved).await;
    // The VPC, both roles, the cluster and the node group are replaced; the subnets' addresses
    // are their zones, so eu-west-1a… go and eu-central-1a… come.
    let text = render_human(&plan);
    assert_eq!(plan.count(ActionKind::Replace), 5, "{text}");
    assert_eq!(plan.count(ActionKind::Delete), 3, "{text}");
    assert_eq!(plan.count(ActionKind::Create), 3, "{text}");
    let roles = plan.actions.iter().filter(|a| a.address.rtype == "eks.role");
    assert!(
        roles.clone().count() == 2
            && roles.into_iter().all(|a| a.replacement == Some(Replacement::DestroyBeforeCreate))
    );
    converge(&h, &plan, &moved).await;

    let gone = seen(&old).await;
    assert!(gone.clusters.is_empty() && gone.vpcs.is_empty() && gone.subnets.is_empty(), "{gone:#?}");
    let s = seen(&new).await;
    assert_eq!(s.clusters, [CLUSTER]);
    assert_eq!(s.vpcs.len(), 1);
    let mut zones: Vec<&str> = s.subnets.iter().filter_map(|x| x.availability_zone()).collect();
    zones.sort_unstable();
    assert_eq!(zones, ["eu-central-1a", "eu-central-1b", "eu-central-1c"]);
    assert_eq!(s.nodegroups.len(), 1);
    let cl = cluster(&new).await;
    for (role, arn) in [("cluster", cl.role_arn().unwrap()), ("node", s.nodegroups[0].node_role().unwrap())] {
        let r = new.iam.get_role().role_name(format!("{CLUSTER}-{role}")).send().await.unwrap();
        let r = r.role().unwrap();
        assert_eq!(r.arn(), arn, "{role} role");
        let generation = r.tags().iter().find(|t| t.key() == TAG_GENERATION).map(|t| t.value());
        assert_eq!(generation, Some("1"), "{role} role is the replacement");
    }
    state_matches(&h, &s, "eu-central-1").await;
}

/// The cloud reports the cluster FAILED: the plan replaces it, destroy first (its name is
/// unique), with its node group; the replacement's look-ups never take the FAILED cluster for
/// the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_cluster_is_replaced_destroy_first() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.url);
    let h = harness(proxy.settings(&moto));
    let a = aws(&moto, "eu-west-1").await;
    let f = fleet("10.60.0.0/16", 4, "eu-west-1");
    converge(&h, &h.plan(&f).await, &f).await;

    proxy.fail_first_generation.store(true, Ordering::SeqCst);
    let plan = h.plan(&f).await;
    let dbc = Some(Replacement::DestroyBeforeCreate);
    assert_eq!(
        kinds(&plan),
        [
            ("eu/eks.cluster/main".to_string(), ActionKind::Replace, dbc),
            ("eu/eks.nodegroup/system".to_string(), ActionKind::Replace, dbc),
        ],
        "{}",
        render_human(&plan)
    );
    let replace = plan.actions.iter().find(|a| a.address.rtype == "eks.cluster").unwrap();
    assert!(replace.reason.contains("FAILED"), "{}", replace.reason);

    // Provider level: the FAILED cluster is generation 0's; generation 1 finds nothing.
    let eks = tessera_eks::EksProvider::new("eu-west-1", proxy.settings(&moto));
    let next = replace.desired.clone().unwrap();
    assert_eq!(next.generation(), 1);
    assert!(eks.find(&next).await.unwrap().is_none(), "generation 1 must not find the FAILED cluster");
    let mut current = next.clone();
    current.set_generation(0);
    let failed = eks.find(&current).await.unwrap().expect("generation 0 finds its own cluster");
    assert_eq!(failed.status, "FAILED");

    let before = proxy.calls().len();
    converge(&h, &plan, &f).await;
    let calls = proxy.calls()[before..].to_vec();
    let at = |call: &str| calls.iter().position(|c| c == call).unwrap_or_else(|| panic!("no {call} in {calls:#?}"));
    let ng_delete = calls.iter().position(|c| c.starts_with(&format!("DELETE /clusters/{CLUSTER}/node-groups/")));
    let delete = at(&format!("DELETE /clusters/{CLUSTER}"));
    let create = at("POST /clusters");
    assert!(ng_delete.is_some_and(|d| d < delete), "the node group goes before its cluster: {calls:#?}");
    assert!(delete < create, "destroy before create: {calls:#?}");

    let s = seen(&a).await;
    assert_eq!(s.clusters, [CLUSTER]);
    let cl = cluster(&a).await;
    assert_eq!(cl.tags().unwrap()[TAG_GENERATION], "1");
    assert_eq!(s.nodegroups.len(), 1);
    assert_eq!(s.nodegroups[0].tags().unwrap()[TAG_GENERATION], "1");
    state_matches(&h, &s, "eu-west-1").await;
}
