//! ARM requests are retried one by one: against the ARM fixture answering 30% of all requests
//! with 429 (and every error in ARM's flat shape), one apply converges, seed after seed. Before,
//! a 429 anywhere in a PUT → poll → read-back sequence failed the whole attempt, and some seeds
//! failed the apply. `Retry-After` is the floor of the next attempt.

mod common;

use std::path::Path;
use std::time::Duration;

use common::chaos::Run;
use tessera_aks_fixture::{AksFixture, Fault};

const SUBSCRIPTION: &str = "6f1c2a3b-0d4e-4f5a-8b9c-0123456789ab";
const SPEC: &str = "apiVersion: tessera.dev/v1alpha1
kind: Fleet
metadata: { name: azt }
spec:
  kubernetes: { version: \"1.31\" }
  nodePools:
    - name: general
      machine: { vcpu: 4, memoryGiB: 16 }
      scale: { min: 1, max: 3 }
    - name: batch
      machine: { vcpu: 8, memoryGiB: 32, spot: true }
      scale: { min: 0, max: 5 }
      taints: [{ key: dedicated, value: batch, effect: NoSchedule }]
  coreServices:
    monitoring: { enabled: false }
    logging: { enabled: false, auditLogs: true }
  placements:
    - { name: az, provider: aks, region: westeurope, scope: { subscription: 6f1c2a3b-0d4e-4f5a-8b9c-0123456789ab } }
";

fn run(dir: &Path, fixture: &AksFixture) -> Run {
    Run {
        dir: dir.to_path_buf(),
        env: vec![
            ("AZURE_ENDPOINT".into(), fixture.url()),
            ("AZURE_ACCESS_TOKEN".into(), "fixture-token".into()),
            ("TESSERA_POLL_INTERVAL".into(), "20ms".into()),
        ],
    }
}

#[test]
fn one_apply_converges_at_30_percent_throttling_with_flat_errors_on_20_seeds_of_20() {
    assert!(SPEC.contains(SUBSCRIPTION));
    let mut failed = Vec::new();
    let mut throttled = 0;
    for seed in 1..=20u64 {
        let fixture = AksFixture::builder().operation_time(Duration::from_millis(50)).start().expect("fixture");
        fixture.throttle(0.3, 0, seed);
        fixture.flat_errors();
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("aks.yaml");
        std::fs::write(&file, SPEC).expect("spec");
        let r = run(dir.path(), &fixture);
        if let Err(e) = r.apply(&file) {
            failed.push(format!("seed {seed}: {e}"));
            continue;
        }
        throttled += fixture.requests().iter().filter(|l| l.status == 429).count();
        assert_eq!(fixture.clusters().len(), 1, "seed {seed}");
        assert_eq!(fixture.pools().len(), 2, "seed {seed}: the system pool and the batch pool");
        fixture.assert_no_rejections();
    }
    assert!(failed.is_empty(), "{} of 20 seeds did not converge:\n{}", failed.len(), failed.join("\n"));
    assert!(throttled >= 20, "the fixture really throttled: {throttled} answers were 429");
}

#[test]
fn a_throttled_request_waits_out_retry_after_and_only_that_request_is_repeated() {
    let fixture = AksFixture::builder().operation_time(Duration::from_millis(50)).start().expect("fixture");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("aks.yaml");
    std::fs::write(&file, SPEC).expect("spec");
    let r = run(dir.path(), &fixture);
    // The cluster's create (a PUT with If-None-Match) is throttled once, for one second.
    fixture.fail_next(Fault {
        path: "/managedClusters/".into(),
        method: Some("PUT".into()),
        times: 1,
        status: 429,
        retry_after: 1,
    });
    r.apply(&file).expect("the apply converges");
    let log = fixture.requests();
    let first = log.iter().position(|l| l.status == 429).expect("the fault was served");
    let again = &log[first + 1..]
        .iter()
        .find(|l| l.method == "PUT" && l.path == log[first].path)
        .expect("the same PUT was sent again");
    assert!(again.at - log[first].at >= Duration::from_secs(1), "Retry-After is the floor");
    assert!(again.if_none_match.is_some(), "a conditional create, which is safe to repeat");
    fixture.assert_no_rejections();
}
