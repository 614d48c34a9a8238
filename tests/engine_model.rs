//! The engine model on the sim, on tokio's paused clock: values flow between resources, a
//! provider is configured from a resource made in the same apply, every replacement converges,
//! and read-only commands work while another run holds the lock.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Harness, fleet_yaml, load};
use tessera::compile::ResourceGraph;
use tessera::exec::{ExecOptions, Report, cancel_signal};
use tessera::plan::{ActionKind, Mode, Plan, render_human};
use tessera::spec::Fleet;
use tessera::state::StateStore;
use tessera_provider_api::{Address, ProviderRef, Replacement, ResourceSpec};
use tessera_sim::Faults;
use tessera_sim::kube::KIND;

const CLUSTER: &str = "aws/sim.cluster/main";
const NAMESPACE_ADDR: &str = "aws/simkube.namespace/tessera-system";

fn one_placement() -> String {
    fleet_yaml("core", &[("aws", "eks", "eu-west-1")])
}

/// The fleet's graph plus a namespace inside its cluster, reached through the cluster's outputs:
/// the shape core services will have.
fn with_namespace(h: &Harness, fleet: &Fleet) -> ResourceGraph {
    let cluster: Address = CLUSTER.parse().unwrap();
    let namespace = ResourceSpec::new(NAMESPACE_ADDR.parse().unwrap(), ProviderRef::connected(KIND, cluster.clone()))
        .attr("name", "tessera-system")
        .attr("tags", serde_json::json!({ "tessera.dev/fleet": "core", "tessera.dev/address": NAMESPACE_ADDR }))
        .attr_ref("server", &cluster, "endpoint")
        .attr_ref("caData", &cluster, "certificateAuthority")
        .replace_on("server")
        .replace_on("caData");
    let mut resources = h.engine.compile(fleet).unwrap().into_resources();
    resources.push(namespace);
    ResourceGraph::from_resources(resources).unwrap()
}

async fn plan_graph(h: &Harness, fleet: &Fleet, graph: &ResourceGraph) -> Plan {
    h.engine.plan_graph(fleet, graph, Mode::Apply).await.expect("plan")
}

fn action<'a>(plan: &'a Plan, address: &str) -> &'a tessera::plan::Action {
    plan.actions.iter().find(|a| a.address.to_string() == address).unwrap_or_else(|| panic!("no action for {address}"))
}

fn live_clusters(h: &Harness) -> Vec<tessera_sim::SimResource> {
    h.cloud.resources().unwrap().into_iter().filter(|r| r.rtype.ends_with(".cluster")).collect()
}

#[tokio::test(start_paused = true)]
async fn a_cluster_and_what_runs_inside_it_plan_and_apply_in_one_run() {
    let h = Harness::new(Faults::default());
    let fleet = load(&one_placement());
    let graph = with_namespace(&h, &fleet);

    let plan = plan_graph(&h, &fleet, &graph).await;
    let ns = action(&plan, NAMESPACE_ADDR);
    assert_eq!(ns.kind, ActionKind::Create);
    for field in ["server", "caData"] {
        let change = ns.changes.iter().find(|c| c.field == field).unwrap();
        assert!(change.known_after_apply, "{field} is not known before the cluster exists");
    }
    let text = render_human(&plan);
    assert!(text.contains("server: (known after apply)"), "{text}");
    assert!(text.contains("caData: (known after apply)"), "{text}");
    // The plan keeps (and its digest signs) the reference itself, not a value.
    let desired = ns.desired.as_ref().unwrap();
    assert_eq!(desired.attrs["server"], serde_json::json!({"$ref": "aws/sim.cluster/main#endpoint"}));

    let report = h.apply_plan(&plan, &fleet).await;
    assert!(report.is_success(), "{report:?}");
    let cluster = h.cloud.find_by_address(CLUSTER).unwrap();
    let namespace = h.cloud.find_by_address(NAMESPACE_ADDR).unwrap();
    assert_eq!(namespace.attrs["server"], cluster.attrs["endpoint"], "resolved just before the call");
    assert_eq!(namespace.attrs["clusterId"], serde_json::json!(cluster.id), "created inside that cluster");

    let again = plan_graph(&h, &fleet, &graph).await;
    assert!(!again.has_changes(), "{}", render_human(&again));
    assert_eq!(h.cloud_ids(), h.state_ids().await);
}

#[tokio::test(start_paused = true)]
async fn a_replaced_cluster_gets_a_new_connection_and_its_objects_move_with_it() {
    let h = Harness::new(Faults::default());
    let fleet = load(&one_placement());
    let graph = with_namespace(&h, &fleet);
    assert!(h.apply_plan(&plan_graph(&h, &fleet, &graph).await, &fleet).await.is_success());
    let old_cluster = h.cloud.find_by_address(CLUSTER).unwrap();

    let renumbered = load(&one_placement().replace("  nodePools:", "  network: { cidr: 10.9.0.0/16 }\n  nodePools:"));
    let graph = with_namespace(&h, &renumbered);
    let plan = plan_graph(&h, &renumbered, &graph).await;
    let ns = action(&plan, NAMESPACE_ADDR);
    assert_eq!(ns.kind, ActionKind::Replace);
    assert!(ns.refresh_deferred, "its cluster is being replaced: nothing to read it through yet");
    assert!(ns.reason.contains("refresh deferred"), "{}", ns.reason);
    let cluster = action(&plan, CLUSTER);
    assert_eq!(cluster.replacement, Some(Replacement::DestroyBeforeCreate), "cluster names are unique");
    assert_eq!(ns.replacement, Some(Replacement::DestroyBeforeCreate), "follows its cluster");

    let report = h.apply_plan(&plan, &renumbered).await;
    assert!(report.is_success(), "{report:?}");
    let new_cluster = h.cloud.find_by_address(CLUSTER).unwrap();
    assert_ne!(new_cluster.id, old_cluster.id);
    assert_eq!(new_cluster.attrs["tags"]["tessera.dev/generation"], "1", "the replacement's generation");
    let namespace = h.cloud.find_by_address(NAMESPACE_ADDR).unwrap();
    assert_eq!(namespace.attrs["clusterId"], serde_json::json!(new_cluster.id));
    assert_eq!(live_clusters(&h).len(), 1);
    assert_eq!(h.cloud_ids(), h.state_ids().await, "nothing left behind, nothing duplicated");
    assert!(!plan_graph(&h, &renumbered, &graph).await.has_changes());
}

#[tokio::test(start_paused = true)]
async fn a_cluster_that_failed_is_replaced_destroy_first_and_converges() {
    let h = Harness::new(Faults::default());
    let fleet = load(&one_placement());
    h.apply(&fleet).await;
    h.cloud.console_set_status(CLUSTER, "FAILED").unwrap();

    let plan = h.plan(&fleet).await;
    let cluster = action(&plan, CLUSTER);
    assert_eq!(cluster.kind, ActionKind::Replace);
    assert!(cluster.reason.contains("FAILED"), "{}", cluster.reason);
    assert_eq!(cluster.replacement, Some(Replacement::DestroyBeforeCreate));
    assert!(render_human(&plan).contains("-/+ aws/sim.cluster/main"));
    let report = h.apply_plan(&plan, &fleet).await;
    assert!(report.is_success(), "{report:?}");

    let clusters = live_clusters(&h);
    assert_eq!(clusters.len(), 1, "the name is unique: the failed cluster went first");
    assert_eq!(clusters[0].status, "ACTIVE");
    assert_eq!(h.cloud_ids(), h.state_ids().await);
    assert!(!h.plan(&fleet).await.has_changes());
}

#[tokio::test(start_paused = true)]
async fn a_region_change_moves_the_whole_placement() {
    let h = Harness::new(Faults::default());
    h.apply(&load(&one_placement())).await;
    let moved = load(&fleet_yaml("core", &[("aws", "eks", "eu-central-1")]));
    let plan = h.plan(&moved).await;
    assert_eq!(plan.count(ActionKind::Replace), 4, "{}", render_human(&plan));
    assert!(action(&plan, CLUSTER).reason.contains("provider changes"));
    assert!(h.apply_plan(&plan, &moved).await.is_success());
    let clusters = live_clusters(&h);
    assert_eq!(clusters.len(), 1);
    assert_eq!(clusters[0].attrs["region"], "eu-central-1");
    assert_eq!(h.cloud_ids(), h.state_ids().await);
    assert!(!h.plan(&moved).await.has_changes());
}

#[tokio::test(start_paused = true)]
async fn a_create_adopts_only_the_object_of_its_own_generation() {
    let h = Harness::new(Faults::default());
    let fleet = load(&one_placement());
    h.apply(&fleet).await;
    let old_network = h.cloud.find_by_address("aws/sim.network/main").unwrap();
    // The bug this guards against: the replacement's create found the old network by its
    // address tag, adopted it, and state then held one object twice.
    let renumbered = load(&one_placement().replace("  nodePools:", "  network: { cidr: 10.9.0.0/16 }\n  nodePools:"));
    assert!(h.apply(&renumbered).await.is_success());
    let networks: Vec<_> = h.cloud.resources().unwrap().into_iter().filter(|r| r.rtype.ends_with(".network")).collect();
    assert_eq!(networks.len(), 1);
    assert_ne!(networks[0].id, old_network.id);
    assert_eq!(networks[0].attrs["cidr"], "10.9.0.0/16");
}

async fn apply_in_background(h: &Arc<Harness>, fleet: Fleet) -> tokio::task::JoinHandle<Report> {
    let h = h.clone();
    tokio::spawn(async move {
        let plan = h.plan(&fleet).await;
        let (_tx, rx) = cancel_signal();
        h.engine.apply(&plan, Some(&fleet), "apply", &ExecOptions::default(), h.events.clone(), rx).await.unwrap()
    })
}

#[tokio::test(start_paused = true)]
async fn plan_and_drift_work_while_another_apply_holds_the_lock() {
    let h = Arc::new(Harness::new(Faults::default()));
    let fleet = load(&one_placement());
    let running = apply_in_background(&h, fleet.clone()).await;
    // Ten virtual minutes in: the control plane is still being created, its intent is open.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(h.store.lock("someone", "apply", 60).await.is_err(), "the apply holds the lock");
    assert!(!h.store.open_intents().await.unwrap().is_empty(), "the apply is mid-flight");

    let plan = h.plan(&fleet).await;
    assert_eq!(plan.notes.len(), 1, "{plan:?}");
    assert!(plan.notes[0].contains("recovery is pending"), "{}", plan.notes[0]);
    assert!(render_human(&plan).contains("recovery is pending"));
    assert!(plan.has_changes(), "made from a fresh read: the cluster is not recorded yet");
    let serial = h.store.meta().await.unwrap().serial;
    assert_eq!(plan.serial, serial, "and it wrote nothing");

    let report = running.await.unwrap();
    assert!(report.is_success(), "{report:?}");
    // Once the apply is done, a plan neither waits nor notes anything.
    let after = h.plan(&fleet).await;
    assert!(after.notes.is_empty() && !after.has_changes(), "{}", render_human(&after));
}

#[tokio::test(start_paused = true)]
async fn a_placement_that_cannot_be_read_is_reported_and_the_others_still_plan() {
    let h = Harness::new(Faults::default());
    let two = fleet_yaml("core", &[("aws", "eks", "eu-west-1"), ("gcp", "gke", "europe-west4")]);
    h.apply(&load(&two)).await;
    h.cloud.set_unreadable(&["aws/sim.cluster/main"]);

    let scaled = load(&two.replace("scale: { min: 3, max: 6 }", "scale: { min: 3, max: 9 }"));
    let plan = h.plan(&scaled).await;
    let unknown: Vec<String> = plan.unknown.iter().map(|u| u.address.to_string()).collect();
    assert_eq!(unknown, ["aws/sim.cluster/main", "aws/sim.nodepool/infra", "aws/sim.nodepool/system"]);
    assert!(plan.unknown[0].error.contains("503"), "{:?}", plan.unknown[0]);
    assert!(plan.unknown[1].error.contains("depends on aws/sim.cluster/main"), "{:?}", plan.unknown[1]);
    assert_eq!(action(&plan, "gcp/sim.nodepool/system").kind, ActionKind::Update, "the other placement planned");
    assert!(!plan.is_complete());
    assert!(render_human(&plan).contains("Could not be planned"));

    let refused = h.try_apply(&plan, &scaled).await.unwrap_err();
    assert!(refused.to_string().contains("incomplete"), "{refused}");
    assert_eq!(h.cloud.stats().updates, 0, "nothing was applied");
}
