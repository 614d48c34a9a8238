//! The chaos harness: `tessera apply` is killed with SIGKILL at seeded random points, then run
//! again. Every run must converge with nothing duplicated or orphaned, state must match the
//! cloud, and the intent journal must be empty. Against the durable sim (100 kill points) and
//! against moto (20). Each prints `runs, converged, orphans, duplicates`.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::chaos::{Run, Tally, Verb, report};
use common::moto::{KEY, Moto, SECRET};
use rand::{Rng, SeedableRng, rngs::SmallRng};

/// One chaos run on the durable sim: given the seed, the run directory and the spec, it kills a
/// run of Tessera and runs it again; says whether the kill landed mid-run, and how the rerun ended.
type Trial = fn(u64, &Run, &Path) -> (bool, Result<(), String>);

/// `runs` trials on the durable sim, four at a time, each in a fresh directory, with the census
/// after each: converged, nothing orphaned or duplicated, the journal empty.
fn on_the_durable_sim(name: &str, runs: u64, spec_text: String, trial: Trial) {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(Mutex::new(0u64));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (tally, failures, next, spec_text) = (tally.clone(), failures.clone(), next.clone(), spec_text.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                loop {
                    let seed = {
                        let mut n = next.lock().unwrap();
                        if *n >= runs {
                            return;
                        }
                        *n += 1;
                        *n - 1
                    };
                    let dir = tempfile::tempdir().unwrap();
                    let spec = dir.path().join("fleet.yaml");
                    std::fs::write(&spec, &spec_text).unwrap();
                    // 0.0005 × real durations: the whole apply takes about half a second.
                    let run = Run {
                        dir: dir.path().to_path_buf(),
                        env: vec![("TESSERA_SIM_TIME_SCALE".into(), "0.0005".into())],
                    };
                    let (killed, converged) = trial(seed, &run, &spec);
                    let cloud = tessera_sim::SimCloud::durable(&dir.path().join("sim.db"), Default::default()).unwrap();
                    // What a chart or an operator made inside a cluster (no address tag) belongs to
                    // its release or custom resource, not to state.
                    let objects: Vec<(String, String)> = cloud
                        .resources()
                        .unwrap()
                        .into_iter()
                        .filter_map(|r| Some((r.id.clone(), r.address_tag()?.to_string())))
                        .collect();
                    let (state_ids, open) = rt.block_on(run.state());
                    let failed = tally.lock().unwrap().count(seed, killed, converged, &objects, &state_ids, open, None);
                    failures.lock().unwrap().extend(failed);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let t = *tally.lock().unwrap();
    report(name, &t);
    let failures = failures.lock().unwrap();
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!((t.runs, t.converged, t.orphans, t.duplicates), (runs as usize, runs as usize, 0, 0));
    assert!(t.killed_mid_run > runs as usize / 2, "most kills must land mid-run to mean anything: {t:?}");
}

fn quickstart() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/quickstart.yaml")).unwrap()
}

/// Applies until the plan is empty.
fn converge(run: &Run, spec: &Path, seed: u64) -> Result<(), String> {
    run.apply(spec).map_err(|e| format!("seed {seed}: {e}"))?;
    run.plan_is_empty(spec).then_some(()).ok_or(format!("seed {seed}: plan not empty after converging"))
}

#[test]
fn killed_applies_converge_on_the_durable_sim() {
    on_the_durable_sim("sim", 100, quickstart(), |seed, run, spec| {
        let mut rng = SmallRng::seed_from_u64(seed);
        let killed = run.apply_and_kill(spec, Duration::from_millis(rng.random_range(0..700)));
        (killed, converge(run, spec, seed))
    });
}

/// The quickstart, changed the way a seed says: an update in place (scaling and labels), a
/// replacement (a new machine for a pool) or, with `None`, a destroy.
fn changed(spec: &Path, seed: u64) -> Option<String> {
    let text = std::fs::read_to_string(spec).unwrap();
    match seed % 3 {
        0 => Some(
            text.replace("scale: { min: 1, max: 10 }", "scale: { min: 2, max: 12 }")
                .replace("tier: infra", "tier: infra2"),
        ),
        1 => Some(text.replace("machine: { vcpu: 8, memoryGiB: 32 }", "machine: { vcpu: 16, memoryGiB: 64 }")),
        _ => None,
    }
}

/// Kills runs during updates, replacements and destroys (recovery's other branches): the fleet
/// is applied, then changed or destroyed, and that run is killed and run again.
#[test]
fn killed_updates_replacements_and_destroys_converge_on_the_durable_sim() {
    // Infrastructure only: these runs are about recovery's branches for cloud objects, and core
    // services (recovered the same way) would triple each run's time.
    on_the_durable_sim("sim changes", 50, common::without_core_services(&quickstart()), |seed, run, spec| {
        if let Err(e) = converge(run, spec, seed) {
            return (false, Err(e));
        }
        let mut rng = SmallRng::seed_from_u64(seed);
        let kill_at = Duration::from_millis(rng.random_range(30..400));
        match changed(spec, seed) {
            Some(text) => {
                let next = run.dir.join("changed.yaml");
                std::fs::write(&next, text).unwrap();
                let killed = run.apply_and_kill(&next, kill_at);
                (killed, converge(run, &next, seed))
            }
            None => {
                let killed = run.run_and_kill(Verb::Destroy, spec, kill_at);
                (killed, run.run(Verb::Destroy, spec).map_err(|e| format!("seed {seed}: destroy: {e}")))
            }
        }
    });
}

/// `specs/eks-two-clusters.yaml`, one cluster, infrastructure only (moto's clusters have no
/// Kubernetes API).
fn one_eks_cluster() -> String {
    let base =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/eks-two-clusters.yaml")).unwrap();
    common::without_core_services(&base).replace("    - { name: us, provider: eks, region: us-east-2 }\n", "")
}

fn moto_run(moto: &Moto, dir: &Path) -> Run {
    Run {
        dir: dir.to_path_buf(),
        env: vec![
            ("AWS_ENDPOINT_URL".into(), moto.url.clone()),
            ("AWS_ACCESS_KEY_ID".into(), KEY.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), SECRET.into()),
        ],
    }
}

/// Kills runs during updates (scaling), replacements (a new instance type) and destroys
/// against moto, 10 times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_updates_replacements_and_destroys_converge_against_moto() {
    const RUNS: u64 = 10;
    let moto = Moto::start();
    let (eks, ec2, iam) = moto_clients(&moto).await;
    let mut t = Tally::default();
    let mut failures = Vec::new();
    for seed in 0..RUNS {
        let dir = tempfile::tempdir().unwrap();
        let fleet = format!("change{seed}");
        let text = one_eks_cluster().replace("name: eks-pair", &format!("name: {fleet}"));
        let spec = dir.path().join("spec.yaml");
        std::fs::write(&spec, &text).unwrap();
        let run = moto_run(&moto, dir.path());
        if let Err(e) = run.apply(&spec) {
            failures.push(format!("seed {seed}: the first apply: {e}"));
            continue;
        }
        let mut rng = SmallRng::seed_from_u64(seed);
        let kill_at = Duration::from_millis(rng.random_range(10..150));
        let (killed, converged, expected) = match seed % 3 {
            2 => {
                let killed = run.run_and_kill(Verb::Destroy, &spec, kill_at);
                (killed, run.run(Verb::Destroy, &spec), 0)
            }
            kind => {
                let next = if kind == 0 {
                    text.replace("scale: { min: 1, max: 5 }", "scale: { min: 2, max: 6 }")
                } else {
                    text.replace(
                        "machine: { vcpu: 8, memoryGiB: 32, arch: amd64, spot: true }",
                        "machine: { vcpu: 16, memoryGiB: 64, arch: amd64, spot: true }",
                    )
                };
                let changed = dir.path().join("changed.yaml");
                std::fs::write(&changed, next).unwrap();
                let killed = run.apply_and_kill(&changed, kill_at);
                let converged = run.apply(&changed).and_then(|()| {
                    run.plan_is_empty(&changed).then_some(()).ok_or("plan not empty after converging".to_string())
                });
                (killed, converged, 9)
            }
        };
        let objects = moto_objects(&ec2, &iam, &eks, &fleet).await;
        let (state_ids, open) = run.state().await;
        failures.extend(t.count(seed, killed, converged, &objects, &state_ids, open, Some(expected)));
    }
    report("moto changes", &t);
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(t.killed_mid_run >= RUNS as usize / 2, "most kills must land mid-run to mean anything: {t:?}");
    assert_eq!((t.runs, t.converged, t.orphans, t.duplicates), (RUNS as usize, RUNS as usize, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_applies_converge_against_moto() {
    const RUNS: u64 = 20;
    let moto = Moto::start();
    let base = one_eks_cluster();
    let (eks, ec2, iam) = moto_clients(&moto).await;
    let mut t = Tally::default();
    let mut failures = Vec::new();
    for seed in 0..RUNS {
        let dir = tempfile::tempdir().unwrap();
        let fleet = format!("chaos{seed}");
        // One cluster per run, under its own fleet name, so runs share the server but not objects.
        let spec = dir.path().join("spec.yaml");
        std::fs::write(&spec, base.replace("name: eks-pair", &format!("name: {fleet}"))).unwrap();
        let run = moto_run(&moto, dir.path());
        let mut rng = SmallRng::seed_from_u64(seed);
        let killed = run.apply_and_kill(&spec, Duration::from_millis(rng.random_range(30..500)));
        let converged = run.apply(&spec);

        let objects = moto_objects(&ec2, &iam, &eks, &fleet).await;
        let (state_ids, open) = run.state().await;
        let converged = converged.map_err(|e| format!("seed {seed}: {e}"));
        failures.extend(t.count(seed, killed, converged, &objects, &state_ids, open, Some(9)));
    }
    report("moto", &t);
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(t.killed_mid_run >= RUNS as usize / 2, "most kills must land mid-apply to mean anything: {t:?}");
    assert_eq!((t.runs, t.converged, t.orphans, t.duplicates), (RUNS as usize, RUNS as usize, 0, 0));
}

/// The clients the census lists objects with.
async fn moto_clients(moto: &Moto) -> (aws_sdk_eks::Client, aws_sdk_ec2::Client, aws_sdk_iam::Client) {
    let conf = moto.sdk("eu-west-1").await;
    (aws_sdk_eks::Client::new(&conf), aws_sdk_ec2::Client::new(&conf), aws_sdk_iam::Client::new(&conf))
}

/// Everything carrying `fleet`'s tags, as AWS (moto) reports it: `(id, address tag)`.
async fn moto_objects(
    ec2: &aws_sdk_ec2::Client,
    iam: &aws_sdk_iam::Client,
    eks: &aws_sdk_eks::Client,
    fleet: &str,
) -> Vec<(String, String)> {
    let tag = aws_sdk_ec2::types::Filter::builder().name("tag:tessera.dev/fleet").values(fleet).build();
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
    objects
}
