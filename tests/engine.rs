//! The engine end to end on the sim cloud, on tokio's paused clock: real-world durations cost
//! nothing, and every schedule is deterministic.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Harness, fleet_yaml, load, three_clouds};
use serde_json::json;
use tessera::engine::EngineError;
use tessera::exec::{Event, ExecOptions, StepStatus, cancel_signal, critical_path};
use tessera::plan::{ActionKind, Mode};
use tessera::state::StateStore;
use tessera_sim::Faults;

#[tokio::test(start_paused = true)]
async fn apply_creates_everything_and_a_second_plan_is_empty() {
    let h = Harness::new(Faults::default());
    let fleet = load(&three_clouds());
    let report = h.apply(&fleet).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.succeeded(), 12, "3 placements × (network, cluster, 2 pools)");
    assert_eq!(h.cloud_ids(), h.state_ids().await, "state records exactly what the cloud has");

    let again = h.plan(&fleet).await;
    assert!(!again.has_changes(), "{}", tessera::plan::render_human(&again));
    assert_eq!(again.unchanged, 12);
    assert!(h.store.open_intents().await.unwrap().is_empty(), "every intent was closed");
}

#[tokio::test(start_paused = true)]
async fn every_created_resource_is_tagged_with_its_fleet_and_address() {
    let h = Harness::new(Faults::default());
    h.apply(&load(&three_clouds())).await;
    for r in h.cloud.resources().unwrap() {
        let tags = r.attrs.get("tags").expect("tags");
        assert_eq!(tags["tessera.dev/fleet"], "core");
        assert!(r.address_tag().is_some_and(|a| a.starts_with(["aws/", "gcp/", "azure/"].iter().find(|p| a.starts_with(**p)).unwrap())));
    }
}

#[tokio::test(start_paused = true)]
async fn scale_change_is_an_in_place_update_and_machine_change_a_replacement() {
    let h = Harness::new(Faults::default());
    let fleet = load(&fleet_yaml("core", &[("aws", "eks", "eu-west-1")]));
    h.apply(&fleet).await;
    let old_infra = h.cloud.find_by_address("aws/sim.nodepool/infra").unwrap().id;

    let changed = load(
        &fleet_yaml("core", &[("aws", "eks", "eu-west-1")])
            .replace("scale: { min: 3, max: 6 }", "scale: { min: 3, max: 9 }")
            .replace("vcpu: 8, memoryGiB: 32", "vcpu: 16, memoryGiB: 64"),
    );
    let plan = h.plan(&changed).await;
    let kind_of = |addr: &str| plan.actions.iter().find(|a| a.address.to_string() == addr).map(|a| a.kind);
    assert_eq!(kind_of("aws/sim.nodepool/system"), Some(ActionKind::Update));
    assert_eq!(kind_of("aws/sim.nodepool/infra"), Some(ActionKind::Replace));
    assert_eq!(plan.actions.len(), 2);
    let update = plan.actions.iter().find(|a| a.kind == ActionKind::Update).unwrap();
    assert_eq!(update.changes[0].field, "maxSize");
    assert_eq!((update.changes[0].old.clone(), update.changes[0].new.clone()), (Some(json!(6)), Some(json!(9))));

    let system_id = h.cloud.find_by_address("aws/sim.nodepool/system").unwrap().id;
    let report = h.apply_plan(&plan, &changed).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(h.cloud.find_by_address("aws/sim.nodepool/system").unwrap().id, system_id, "updated in place");
    let new_infra = h.cloud.find_by_address("aws/sim.nodepool/infra").unwrap();
    assert_ne!(new_infra.id, old_infra, "replaced");
    assert_eq!(new_infra.attrs["instanceType"], "m6i.4xlarge");

    // Create before destroy: the new pool existed before the old one was deleted.
    let calls = h.cloud.calls();
    let created = calls.iter().find(|c| c.op == "create" && c.id == new_infra.id).unwrap();
    let deleted = calls.iter().find(|c| c.op == "delete" && c.id == old_infra).unwrap();
    assert!(created.finished <= deleted.started, "{created:?} then {deleted:?}");
    assert_eq!(h.cloud_ids(), h.state_ids().await);
    assert!(!h.plan(&changed).await.has_changes());
}

#[tokio::test(start_paused = true)]
async fn replacing_a_cluster_replaces_its_pools_and_deletes_old_pools_first() {
    let h = Harness::new(Faults::default());
    h.apply(&load(&fleet_yaml("core", &[("aws", "eks", "eu-west-1")]))).await;
    // Moving the cluster to another region cannot be done in place.
    let moved = load(&fleet_yaml("core", &[("aws", "eks", "us-east-2")]));
    let plan = h.plan(&moved).await;
    assert_eq!(plan.count(ActionKind::Replace), 4, "{}", tessera::plan::render_human(&plan));
    let pool = plan.actions.iter().find(|a| a.address.to_string() == "aws/sim.nodepool/system").unwrap();
    assert!(pool.reason.contains("us-east-2"), "{}", pool.reason);

    let before: Vec<_> = h.cloud.resources().unwrap();
    let report = h.apply_plan(&plan, &moved).await;
    assert!(report.is_success(), "{report:?}");
    let calls = h.cloud.calls();
    let old_cluster = before.iter().find(|r| r.rtype == "sim.cluster").unwrap();
    let cluster_delete = calls.iter().find(|c| c.op == "delete" && c.id == old_cluster.id).unwrap();
    for old_pool in before.iter().filter(|r| r.rtype == "sim.nodepool") {
        let d = calls.iter().find(|c| c.op == "delete" && c.id == old_pool.id).unwrap();
        assert!(d.finished <= cluster_delete.started, "old pool deleted before its old cluster");
    }
    assert_eq!(h.cloud_ids(), h.state_ids().await);
    assert_eq!(h.cloud.resources().unwrap().len(), 4, "no deposed leftovers");
}

#[tokio::test(start_paused = true)]
async fn a_stale_plan_is_refused() {
    let h = Harness::new(Faults::default());
    let fleet = load(&three_clouds());
    let plan = h.plan(&fleet).await;
    h.apply_plan(&plan, &fleet).await;

    // The same plan again: state's serial has moved on.
    let err = h.try_apply(&plan, &fleet).await.unwrap_err();
    assert!(matches!(&err, EngineError::Stale(m) if m.contains("serial 0 then, 12 now")), "{err}");

    // A fresh plan, but the spec changed since.
    let plan = h.plan(&fleet).await;
    let edited = load(&three_clouds().replace("max: 6", "max: 7"));
    let err = h.try_apply(&plan, &edited).await.unwrap_err();
    assert!(matches!(&err, EngineError::Stale(m) if m.contains("spec")), "{err}");

    // A plan made against another state altogether.
    let other = Harness::new(Faults::default());
    let foreign = other.plan(&fleet).await;
    let err = h.try_apply(&foreign, &fleet).await.unwrap_err();
    assert!(matches!(&err, EngineError::Stale(m) if m.contains("another state")), "{err}");
    assert_eq!(h.cloud.resources().unwrap().len(), 12, "nothing was touched");
}

#[tokio::test(start_paused = true)]
async fn a_failed_branch_skips_its_dependents_and_the_rest_completes() {
    let faults = Faults { fail_addresses: ["gcp/sim.cluster/main".to_string()].into(), ..Default::default() };
    let h = Harness::new(faults);
    let fleet = load(&three_clouds());
    let report = h.apply(&fleet).await;
    assert_eq!(report.failed(), 1);
    assert_eq!(report.skipped(), 2, "gcp's two pools");
    assert_eq!(report.succeeded(), 9, "aws, azure, and gcp's network");
    for s in &report.steps {
        if s.address.starts_with("gcp/sim.nodepool/") {
            assert!(matches!(&s.status, StepStatus::Skipped(why) if why.contains("gcp/sim.cluster/main")), "{s:?}");
        }
    }
    assert_eq!(h.cloud_ids(), h.state_ids().await, "state records exactly what exists");
    assert!(h.store.open_intents().await.unwrap().is_empty());
    let skipped = h.events.events().iter().filter(|e| matches!(e, Event::StepSkipped { .. })).count();
    assert_eq!(skipped, 2);
}

#[tokio::test(start_paused = true)]
async fn ctrl_c_stops_scheduling_gives_in_flight_calls_a_grace_period_and_keeps_state_consistent() {
    let h = Harness::new(Faults::default());
    let fleet = load(&three_clouds());
    let plan = h.plan(&fleet).await;
    let (tx, rx) = cancel_signal();
    // Networks take under a minute; control planes 4-10. Cancel while control planes are in flight.
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(120)).await;
        let _ = tx.send(true);
    });
    let started = tokio::time::Instant::now();
    let report =
        h.engine.apply(&plan, Some(&fleet), "test", &ExecOptions::default(), h.events.clone(), rx).await.unwrap();
    assert!(report.interrupted);
    assert!(started.elapsed() <= Duration::from_secs(120) + tessera::exec::GRACE, "ended within the grace period");
    assert_eq!(report.failed(), 0);
    assert_eq!(report.succeeded(), 3, "3 networks done before: {report:?}");
    assert_eq!(report.interrupted_steps(), 3, "3 control planes in flight past the grace period: {report:?}");
    assert_eq!(report.not_started(), 6, "no pool started after the interrupt");
    // Their outcome is unknown: their intents stay open for recovery.
    assert_eq!(h.store.open_intents().await.unwrap().len(), 3);
    let lease = h.store.lock("next", "apply", 60).await.expect("the lock was released");
    h.store.unlock(&lease).await.unwrap();

    // The next run recovers what was in flight (the clouds went on making the control planes)
    // and picks up where it stopped.
    let h2 = h; // same cloud and state
    let rest = h2.plan(&fleet).await;
    assert!(h2.store.open_intents().await.unwrap().is_empty(), "recovery settled them");
    assert_eq!(h2.cloud_ids(), h2.state_ids().await);
    assert_eq!(rest.count(ActionKind::Create), 6);
    assert_eq!(rest.unchanged, 6);
}

#[tokio::test(start_paused = true)]
async fn destroy_deletes_dependents_before_what_they_depend_on() {
    let h = Harness::new(Faults::default());
    let fleet = load(&three_clouds());
    h.apply(&fleet).await;
    let before = h.cloud.resources().unwrap();
    let report = h.destroy(&fleet).await;
    assert!(report.is_success(), "{report:?}");
    assert!(h.cloud.resources().unwrap().is_empty());
    assert!(h.store.resources().await.unwrap().is_empty());

    let calls = h.cloud.calls();
    let deleted = |id: &str| calls.iter().find(|c| c.op == "delete" && c.id == id).unwrap().clone();
    for r in &before {
        let placement = r.address_tag().unwrap().split('/').next().unwrap();
        let parent_type = match r.rtype.as_str() {
            "sim.nodepool" => "sim.cluster",
            "sim.cluster" => "sim.network",
            _ => continue,
        };
        let parent =
            before.iter().find(|p| p.rtype == parent_type && p.address_tag().unwrap().starts_with(placement)).unwrap();
        assert!(deleted(&r.id).finished <= deleted(&parent.id).started, "{} deleted before {}", r.rtype, parent.rtype);
    }
}

#[tokio::test(start_paused = true)]
async fn throttling_is_retried_until_the_apply_converges() {
    let h = Harness::new(Faults { throttle_rate: 0.3, seed: 7, ..Default::default() });
    let fleet = load(&three_clouds());
    let plan = h.plan(&fleet).await;
    let bound = critical_path(&plan, &h.engine.registry).unwrap();
    let start = tokio::time::Instant::now();
    let report = h.apply_plan(&plan, &fleet).await;
    let took = start.elapsed();
    assert!(report.is_success(), "{report:?}");
    let calls = report.steps.len() as u64;
    println!(
        "30% throttled: {} retries over {calls} actions, {:?} against a critical path of {bound:?}",
        report.retries, took
    );
    assert!(report.retries > 0, "30% throttling must have caused retries");
    assert!(report.retries <= calls * 2, "retries are bounded: {} for {calls} actions", report.retries);
    assert!(took <= bound + bound / 5, "throttling costs under 20% of the critical path here: {took:?} vs {bound:?}");
    assert!(h.cloud.stats().throttled > 0);
    let retry_events = h.events.events().iter().filter(|e| matches!(e, Event::StepRetrying { .. })).count() as u64;
    assert_eq!(retry_events, report.retries);
    let aws = h.engine.registry.rate(&plan.actions[0].provider).stats();
    assert!(aws.throttles > 0 && aws.lowest_rate.is_some(), "the shared rate dropped: {aws:?}");
    assert!(!h.plan(&fleet).await.has_changes());
}

#[tokio::test(start_paused = true)]
async fn console_changes_are_reported_as_drift() {
    let h = Harness::new(Faults::default());
    let fleet = load(&three_clouds());
    h.apply(&fleet).await;
    h.cloud.console_edit("aws/sim.nodepool/system", "maxSize", json!(12)).unwrap();
    // The autoscaler moving the node count is delegated: never drift.
    h.cloud.console_edit("aws/sim.nodepool/system", "desiredSize", json!(5)).unwrap();
    h.cloud.console_delete("gcp/sim.nodepool/infra").unwrap();

    let plan = h.plan(&fleet).await;
    let drift: BTreeSet<(String, String)> =
        plan.drift.iter().map(|d| (d.address.to_string(), d.field.clone())).collect();
    assert_eq!(
        drift,
        BTreeSet::from([
            ("aws/sim.nodepool/system".to_string(), "maxSize".to_string()),
            ("gcp/sim.nodepool/infra".to_string(), "(resource)".to_string()),
        ])
    );
    let max = plan.drift.iter().find(|d| d.field == "maxSize").unwrap();
    assert_eq!((max.recorded.clone(), max.live.clone()), (Some(json!(6)), Some(json!(12))));
    // And the plan puts things back.
    assert_eq!(plan.count(ActionKind::Update), 1);
    assert_eq!(plan.count(ActionKind::Create), 1);
    h.apply_plan(&plan, &fleet).await;
    let after = h.plan(&fleet).await;
    assert!(after.drift.is_empty() && !after.has_changes());
}

#[tokio::test(start_paused = true)]
async fn removed_placements_are_destroyed_and_state_is_bound_to_its_fleet() {
    let h = Harness::new(Faults::default());
    h.apply(&load(&three_clouds())).await;
    let two = load(&fleet_yaml("core", &[("aws", "eks", "eu-west-1"), ("gcp", "gke", "europe-west4")]));
    let plan = h.plan(&two).await;
    assert_eq!(plan.count(ActionKind::Delete), 4);
    assert!(h.apply_plan(&plan, &two).await.is_success());
    assert_eq!(h.cloud.resources().unwrap().len(), 8);

    let other = load(&fleet_yaml("other", &[("aws", "eks", "eu-west-1")]));
    let err = h.engine.plan(&other, Mode::Apply).await.unwrap_err();
    assert!(err.to_string().contains("belongs to fleet `core`"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn longest_path_first_keeps_the_makespan_at_the_critical_path() {
    let h = Harness::new(Faults::default());
    let fleet = load(&three_clouds());
    let plan = h.plan(&fleet).await;
    let bound = critical_path(&plan, &h.engine.registry).unwrap();
    assert_eq!(bound, Duration::from_secs(40 + 600 + 240), "EKS network + control plane + pool");
    let start = tokio::time::Instant::now();
    h.apply_plan(&plan, &fleet).await;
    let makespan = start.elapsed();
    assert!(
        makespan >= bound && makespan <= bound + Duration::from_secs(1),
        "makespan {makespan:?} vs bound {bound:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_second_apply_is_refused_while_the_state_is_locked() {
    let h = Harness::new(Faults::default());
    let lease = h.store.lock("alice@laptop", "apply", 600).await.unwrap();
    let fleet = load(&three_clouds());
    let plan = h.plan(&fleet).await;
    let err = h.try_apply(&plan, &fleet).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("alice@laptop") && text.contains(&lease.lock_id), "{text}");
    assert!(h.cloud.resources().unwrap().is_empty(), "nothing was touched");
}

#[tokio::test(start_paused = true)]
async fn replacing_a_dependency_replaces_its_dependents() {
    let h = Harness::new(Faults::default());
    let base = fleet_yaml("core", &[("aws", "eks", "eu-west-1")]);
    h.apply(&load(&base)).await;
    let renumbered = load(&base.replace("  nodePools:", "  network: { cidr: 10.9.0.0/16 }\n  nodePools:"));
    let plan = h.plan(&renumbered).await;
    assert_eq!(plan.count(ActionKind::Replace), 4);
    let reason = |addr: &str| plan.actions.iter().find(|a| a.address.to_string() == addr).unwrap().reason.clone();
    assert!(reason("aws/sim.network/main").contains("`cidr` cannot change in place"));
    // The cluster references the network's id, which is unknown until the new network exists.
    assert!(reason("aws/sim.cluster/main").contains("`network` cannot change in place"));
    let cluster = plan.actions.iter().find(|a| a.address.to_string() == "aws/sim.cluster/main").unwrap();
    let network = cluster.changes.iter().find(|c| c.field == "network").unwrap();
    assert!(network.known_after_apply, "{network:?}");
    let rendered = tessera::plan::render_human(&plan);
    assert!(rendered.contains("network: \"eks-network-000001\" → (known after apply)"), "{rendered}");
    assert!(reason("aws/sim.nodepool/infra").contains("`cluster` cannot change in place"));
    assert!(h.apply_plan(&plan, &renumbered).await.is_success());
    assert!(!h.plan(&renumbered).await.has_changes());
    assert_eq!(h.cloud_ids(), h.state_ids().await);
}

#[tokio::test(start_paused = true)]
async fn an_action_that_outlives_its_timeout_fails_and_leaves_its_intent_open() {
    let h = Harness::new(Faults::default());
    let fleet = load(&fleet_yaml("core", &[("aws", "eks", "eu-west-1")]));
    let plan = h.plan(&fleet).await;
    let (_tx, rx) = cancel_signal();
    // Networks take 40 s, the EKS control plane 10 min: only the control plane times out.
    let opts = ExecOptions { step_timeout: Some(Duration::from_secs(300)), ..Default::default() };
    let report = h.engine.apply(&plan, Some(&fleet), "test", &opts, h.events.clone(), rx).await.unwrap();
    let cluster = report.steps.iter().find(|s| s.address == "aws/sim.cluster/main").unwrap();
    assert!(matches!(&cluster.status, StepStatus::Failed(m) if m.contains("timed out")), "{cluster:?}");
    assert_eq!(report.skipped(), 2, "both pools");
    let open = h.store.open_intents().await.unwrap();
    assert_eq!(open.len(), 1, "the outcome is unknown, so the intent stays open for recovery");
    assert_eq!(open[0].address.to_string(), "aws/sim.cluster/main");
}

#[tokio::test(start_paused = true)]
async fn a_version_upgrade_updates_the_control_plane_before_its_pools() {
    let h = Harness::new(Faults::default());
    let base = fleet_yaml("core", &[("aws", "eks", "eu-west-1")]);
    h.apply(&load(&base)).await;
    let upgraded = load(&base.replace("version: \"1.31\"", "version: \"1.32\""));
    let plan = h.plan(&upgraded).await;
    assert_eq!(plan.count(ActionKind::Update), 3, "{}", tessera::plan::render_human(&plan));
    assert!(h.apply_plan(&plan, &upgraded).await.is_success());
    let calls = h.cloud.calls();
    let updates: Vec<_> = calls.iter().filter(|c| c.op == "update").collect();
    let cluster = updates.iter().find(|c| c.address == "aws/sim.cluster/main").unwrap();
    for pool in updates.iter().filter(|c| c.address.contains("nodepool")) {
        assert!(cluster.finished <= pool.started, "control plane first, then {}", pool.address);
    }
}

/// The sim makes each change and then, 30% of the time, loses its answer (a 504): the retry of a
/// create finds the object by its tags, an update repeats harmlessly, a delete finds it gone.
/// Apply and destroy converge with one object per address and nothing left.
#[tokio::test(start_paused = true)]
async fn lost_answers_after_the_change_was_made_converge_without_duplicates() {
    let h = Harness::new(Faults { lost_response_rate: 0.3, seed: 11, ..Default::default() });
    let yaml = three_clouds();
    let fleet = load(&yaml);
    let report = h.apply(&fleet).await;
    assert!(report.is_success(), "{report:?}");
    assert!(h.cloud.stats().lost_responses > 0, "answers were lost");
    assert_eq!(h.cloud_ids(), h.state_ids().await, "one object per address, all recorded");
    assert!(!h.plan(&fleet).await.has_changes());

    let changed = load(&yaml.replace("scale: { min: 1, max: 3 }", "scale: { min: 1, max: 4 }"));
    assert!(h.plan(&changed).await.has_changes(), "the change is an update in place");
    let report = h.apply(&changed).await;
    assert!(report.is_success(), "{report:?}");
    assert!(!h.plan(&changed).await.has_changes());

    let lost = h.cloud.stats().lost_responses;
    let report = h.destroy(&changed).await;
    assert!(report.is_success(), "{report:?}");
    assert!(h.cloud.stats().lost_responses > lost, "deletes lost answers too");
    assert!(h.cloud_ids().is_empty() && h.state_ids().await.is_empty());
}
