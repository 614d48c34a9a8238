//! The chaos harness: `tessera apply` is killed with SIGKILL at seeded random points, then run
//! again. Every run must converge with nothing duplicated or orphaned, state must match the
//! cloud, and the intent journal must be empty. Against the durable sim (100 kill points) and
//! against moto (20). Each prints `runs, converged, orphans, duplicates`.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::chaos::{Run, Tally, census, report};
use common::moto::{KEY, Moto, SECRET};
use rand::{Rng, SeedableRng, rngs::SmallRng};

#[test]
fn killed_applies_converge_on_the_durable_sim() {
    const RUNS: u64 = 100;
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/quickstart.yaml");
    let tally = Arc::new(Mutex::new(Tally::default()));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(Mutex::new(0u64));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (tally, failures, next, spec) = (tally.clone(), failures.clone(), next.clone(), spec.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                loop {
                    let seed = {
                        let mut n = next.lock().unwrap();
                        if *n >= RUNS {
                            return;
                        }
                        *n += 1;
                        *n - 1
                    };
                    let dir = tempfile::tempdir().unwrap();
                    // 0.0005 × real durations: the whole apply takes about half a second.
                    let run = Run {
                        dir: dir.path().to_path_buf(),
                        env: vec![("TESSERA_SIM_TIME_SCALE".into(), "0.0005".into())],
                    };
                    let mut rng = SmallRng::seed_from_u64(seed);
                    let kill_at = Duration::from_millis(rng.random_range(0..700));
                    let killed = run.apply_and_kill(&spec, kill_at);
                    let converged = run.apply(&spec).map_err(|e| format!("seed {seed}: {e}")).and_then(|()| {
                        run.plan_is_empty(&spec)
                            .then_some(())
                            .ok_or(format!("seed {seed}: plan not empty after converging"))
                    });
                    let cloud = tessera_sim::SimCloud::durable(&dir.path().join("sim.db"), Default::default()).unwrap();
                    // What a chart or an operator made inside a cluster (no address tag) belongs to
                    // its release or custom resource, not to state.
                    let objects: Vec<(String, String)> = cloud
                        .resources()
                        .unwrap()
                        .into_iter()
                        .filter_map(|r| Some((r.id.clone(), r.address_tag()?.to_string())))
                        .collect();
                    let (duplicates, cloud_ids) = census(&objects);
                    let (state_ids, open) = rt.block_on(run.state());
                    let orphans = cloud_ids.difference(&state_ids).count();
                    let mut t = tally.lock().unwrap();
                    t.runs += 1;
                    t.killed_mid_run += usize::from(killed);
                    t.duplicates += duplicates;
                    t.orphans += orphans;
                    match converged {
                        Ok(()) if state_ids == cloud_ids && open == 0 => t.converged += 1,
                        Ok(()) => failures.lock().unwrap().push(format!(
                            "seed {seed}: state {state_ids:?} vs cloud {cloud_ids:?}, {open} open intents"
                        )),
                        Err(e) => failures.lock().unwrap().push(e),
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let t = *tally.lock().unwrap();
    report("sim", &t);
    let failures = failures.lock().unwrap();
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!((t.runs, t.converged, t.orphans, t.duplicates), (RUNS as usize, RUNS as usize, 0, 0));
    assert!(t.killed_mid_run > RUNS as usize / 2, "most kills must land mid-apply to mean anything: {t:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_applies_converge_against_moto() {
    const RUNS: u64 = 20;
    let moto = Moto::start();
    let base =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/eks-two-clusters.yaml")).unwrap();
    let conf = moto.sdk("eu-west-1").await;
    let (eks, ec2, iam) =
        (aws_sdk_eks::Client::new(&conf), aws_sdk_ec2::Client::new(&conf), aws_sdk_iam::Client::new(&conf));
    let mut t = Tally::default();
    let mut failures = Vec::new();
    for seed in 0..RUNS {
        let dir = tempfile::tempdir().unwrap();
        let fleet = format!("chaos{seed}");
        // One cluster per run, under its own fleet name, so runs share the server but not objects.
        let spec_text = common::without_core_services(&base)
            .replace("name: eks-pair", &format!("name: {fleet}"))
            .replace("    - { name: us, provider: eks, region: us-east-2 }\n", "");
        let spec = dir.path().join("spec.yaml");
        std::fs::write(&spec, spec_text).unwrap();
        let run = Run {
            dir: dir.path().to_path_buf(),
            env: vec![
                ("AWS_ENDPOINT_URL".into(), moto.url.clone()),
                ("AWS_ACCESS_KEY_ID".into(), KEY.into()),
                ("AWS_SECRET_ACCESS_KEY".into(), SECRET.into()),
            ],
        };
        let mut rng = SmallRng::seed_from_u64(seed);
        let killed = run.apply_and_kill(&spec, Duration::from_millis(rng.random_range(30..500)));
        let converged = run.apply(&spec);

        // Everything carrying this fleet's tags, as AWS reports it.
        let tag = aws_sdk_ec2::types::Filter::builder().name("tag:tessera.dev/fleet").values(&fleet).build();
        let tag_of = |tags: &[aws_sdk_ec2::types::Tag]| {
            tags.iter()
                .find(|t| t.key() == Some("tessera.dev/address"))
                .and_then(|t| t.value())
                .unwrap_or_default()
                .to_string()
        };
        let mut objects: Vec<(String, String)> = Vec::new();
        for v in ec2.describe_vpcs().filters(tag.clone()).send().await.unwrap().vpcs() {
            objects.push((v.vpc_id().unwrap_or_default().into(), tag_of(v.tags())));
        }
        for s in ec2.describe_subnets().filters(tag).send().await.unwrap().subnets() {
            objects.push((s.subnet_id().unwrap_or_default().into(), tag_of(s.tags())));
        }
        for role in ["cluster", "node"] {
            let name = format!("{fleet}-eu-{role}");
            if iam.get_role().role_name(&name).send().await.is_ok() {
                objects.push((name, format!("eu/eks.role/{role}")));
            }
        }
        let cluster = format!("{fleet}-eu");
        if eks.describe_cluster().name(&cluster).send().await.is_ok() {
            objects.push((cluster.clone(), "eu/eks.cluster/main".into()));
            let groups = eks.list_nodegroups().cluster_name(&cluster).send().await.unwrap();
            for g in groups.nodegroups() {
                let ng = eks.describe_nodegroup().cluster_name(&cluster).nodegroup_name(g).send().await.unwrap();
                let address = ng
                    .nodegroup()
                    .and_then(|n| n.tags())
                    .and_then(|t| t.get("tessera.dev/address"))
                    .cloned()
                    .unwrap_or_default();
                objects.push((format!("{cluster}/{g}"), address));
            }
        }
        let (duplicates, cloud_ids) = census(&objects);
        let (state_ids, open) = run.state().await;
        let orphans = cloud_ids.difference(&state_ids).count();
        t.runs += 1;
        t.killed_mid_run += usize::from(killed);
        t.duplicates += duplicates;
        t.orphans += orphans;
        match converged {
            Ok(()) if state_ids == cloud_ids && open == 0 && cloud_ids.len() == 9 => t.converged += 1,
            Ok(()) => {
                failures.push(format!("seed {seed}: state {state_ids:?} vs cloud {cloud_ids:?}, {open} open intents"))
            }
            Err(e) => failures.push(format!("seed {seed}: {e}")),
        }
    }
    report("moto", &t);
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(t.killed_mid_run >= RUNS as usize / 2, "most kills must land mid-apply to mean anything: {t:?}");
    assert_eq!((t.runs, t.converged, t.orphans, t.duplicates), (RUNS as usize, RUNS as usize, 0, 0));
}
