//! Properties over generated fleets and generated spec text.

mod common;

use std::path::Path;

use common::Harness;
use proptest::prelude::*;
use tessera_sim::Faults;

const MACHINES: [(u32, u32); 3] = [(2, 8), (4, 16), (8, 32)];
/// Each sim profile with two regions, so that an edit can move a placement.
const PLACES: [(&str, [&str; 2]); 4] = [
    ("eks", ["eu-west-1", "eu-central-1"]),
    ("gke", ["europe-west4", "europe-west1"]),
    ("aks", ["westeurope", "northeurope"]),
    ("kind", ["", ""]),
];
const CIDRS: [&str; 2] = ["10.0.0.0/16", "10.8.0.0/16"];

/// A placement: which profile, and which of its two regions.
type PlaceGen = (usize, usize);

#[derive(Debug, Clone)]
struct PoolGen {
    machine: usize,
    min: u32,
    extra: u32,
    taint: bool,
    spot: bool,
}

fn pool() -> impl Strategy<Value = PoolGen> {
    (0..MACHINES.len(), 0u32..4, 0u32..5, any::<bool>(), any::<bool>()).prop_map(
        |(machine, min, extra, taint, spot)| PoolGen {
            machine,
            min,
            extra: extra.max(u32::from(min == 0)),
            taint,
            spot,
        },
    )
}

fn fleet_text(pools: &[PoolGen], places: &[PlaceGen], cidr: usize) -> String {
    let mut y = format!(
        "apiVersion: tessera.dev/v1alpha1\nkind: Fleet\nmetadata: {{ name: gen }}\nspec:\n  kubernetes: {{ version: \"1.31\" }}\n  network: {{ cidr: {} }}\n  nodePools:\n",
        CIDRS[cidr]
    );
    for (i, p) in pools.iter().enumerate() {
        let (vcpu, mem) = MACHINES[p.machine];
        y.push_str(&format!(
            "    - name: pool{i}\n      machine: {{ vcpu: {vcpu}, memoryGiB: {mem}, spot: {} }}\n      scale: {{ min: {}, max: {} }}\n",
            p.spot,
            p.min,
            p.min + p.extra
        ));
        if p.taint {
            y.push_str(&format!("      taints: [{{ key: dedicated, value: p{i}, effect: NoSchedule }}]\n"));
        }
    }
    y.push_str("  coreServices:\n    monitoring: { enabled: false }\n    logging: { enabled: false }\n  placements:\n");
    for (i, &(p, r)) in places.iter().enumerate() {
        let (profile, regions) = PLACES[p];
        let region = regions[r];
        let region = if region.is_empty() { String::new() } else { format!(", region: {region}") };
        y.push_str(&format!("    - {{ name: c{i}, provider: sim, sim: {{ profile: {profile} }}{region} }}\n"));
    }
    y
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// After apply(plan(spec)), a new plan shows no changes, and state matches the cloud; the
    /// same holds after a random edit of the spec is applied on top of the first: other pools
    /// and machines, another network CIDR, placements moved to another region. The sim enforces
    /// unique cluster names per region and adopts what is tagged with the same address and
    /// generation, as the clouds do, so every replacement order is exercised for real.
    #[test]
    fn apply_of_a_plan_converges(
        pools in prop::collection::vec(pool(), 1..4),
        places in prop::collection::vec((0..PLACES.len(), 0..2usize), 1..4),
        pools2 in prop::collection::vec(pool(), 1..4),
        moves in prop::collection::vec(any::<bool>(), 3),
        cidrs in (0..2usize, 0..2usize),
        throttle in prop_oneof![Just(0.0), Just(0.2)],
    ) {
        paused_runtime().block_on(async {
            let h = Harness::new(Faults { throttle_rate: throttle, seed: 3, ..Default::default() });
            let moved: Vec<PlaceGen> =
                places.iter().zip(&moves).map(|(&(p, r), &m)| (p, if m { 1 - r } else { r })).collect();
            for text in [fleet_text(&pools, &places, cidrs.0), fleet_text(&pools2, &moved, cidrs.1)] {
                let fleet = common::load(&text);
                let report = h.apply(&fleet).await;
                prop_assert!(report.is_success(), "{:?}", report);
                let again = h.plan(&fleet).await;
                prop_assert!(!again.has_changes(), "{}", tessera::plan::render_human(&again));
                prop_assert!(again.drift.is_empty());
                prop_assert_eq!(h.cloud_ids(), h.state_ids().await);
                // One live cluster per placement: nothing duplicated, nothing left behind.
                let clusters = h.cloud.resources().unwrap().into_iter().filter(|r| r.rtype.ends_with(".cluster")).count();
                prop_assert_eq!(clusters, places.len());
            }
            Ok(())
        })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The spec parser never panics, whatever it is fed.
    #[test]
    fn spec_parser_never_panics_on_arbitrary_text(text in "\\PC{0,300}") {
        let _ = tessera::spec::load_str(Path::new("fuzz.yaml"), &text);
    }

    /// Nor on a valid spec with bytes changed, inserted or removed: the near-misses a person
    /// actually writes. Every error it reports carries a location inside the file.
    #[test]
    fn spec_parser_never_panics_on_mutated_specs(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, prop::sample::select(b" :-{}[]\"'#&*!|>\n\t0aZ".to_vec())), 1..6)
    ) {
        let mut bytes = fleet_text(&[PoolGen { machine: 1, min: 1, extra: 2, taint: true, spot: false }], &[(0, 0), (3, 0)], 0).into_bytes();
        for (at, op, b) in edits {
            let i = at.index(bytes.len().max(1));
            match op {
                0 if i < bytes.len() => bytes[i] = b,
                1 => bytes.insert(i.min(bytes.len()), b),
                _ if i < bytes.len() => { bytes.remove(i); }
                _ => {}
            }
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Err(e) = tessera::spec::load_str(Path::new("fuzz.yaml"), &text) {
            let lines = text.lines().count().max(1) as u64 + 1;
            for p in e.lines() {
                let loc: Vec<&str> = p.splitn(4, ':').collect();
                let line: u64 = loc[1].parse().unwrap_or(0);
                prop_assert!(line >= 1 && line <= lines, "{} is outside the file ({} lines)", p, lines);
            }
        }
    }
}

/// Applies `edits` (replace, insert or remove a byte) to `base`: the near-misses of a file a
/// person, a truncating copy or a hostile pull request produces.
fn mutate(base: &[u8], edits: &[(prop::sample::Index, u8, u8)]) -> String {
    let mut bytes = base.to_vec();
    for (at, op, b) in edits {
        let i = at.index(bytes.len().max(1));
        match op {
            0 if i < bytes.len() => bytes[i] = *b,
            1 => bytes.insert(i.min(bytes.len()), *b),
            _ if i < bytes.len() => {
                bytes.remove(i);
            }
            _ => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn edits() -> impl Strategy<Value = Vec<(prop::sample::Index, u8, u8)>> {
    prop::collection::vec(
        (any::<prop::sample::Index>(), 0u8..3, prop::sample::select(b" :,{}[]\"'#\n0aZ-".to_vec())),
        1..8,
    )
}

/// A real plan file: the quickstart planned on an empty state.
fn plan_file_text() -> String {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        let h = Harness::new(Faults::default());
        let fleet = common::load(&common::fleet_yaml("fuzz", &[("a", "eks", "eu-west-1")]));
        let plan = paused_runtime().block_on(h.plan(&fleet));
        tessera::plan::PlanFile::new(plan).to_json()
    })
    .clone()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Plan files come from CI artifacts and approvers' machines: parsing one never panics,
    /// whatever was done to it, and a changed plan never passes for the original.
    #[test]
    fn plan_files_never_panic_and_a_changed_one_is_not_taken(edits in edits()) {
        let base = plan_file_text();
        let text = mutate(base.as_bytes(), &edits);
        let parsed = tessera::plan::PlanFile::parse(Path::new("fuzz.plan"), &text);
        if text != base {
            if let Ok(file) = parsed {
                // Whitespace may change and still parse; the plan it carries must be the same.
                let original = tessera::plan::PlanFile::parse(Path::new("base.plan"), &base).unwrap();
                prop_assert_eq!(tessera::plan::digest(&file.plan), tessera::plan::digest(&original.plan));
            }
        }
    }

    #[test]
    fn plan_files_never_panic_on_arbitrary_text(text in "\\PC{0,300}") {
        let _ = tessera::plan::PlanFile::parse(Path::new("fuzz.plan"), &text);
    }

    /// Policy files arrive through pull requests.
    #[test]
    fn policy_files_never_panic(edits in edits()) {
        let base = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policy.yaml")).unwrap();
        let _ = tessera::pipeline::policy::Policy::parse(Path::new("policy.yaml"), &mutate(base.as_bytes(), &edits));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// State rows are read back from a file anyone with access can edit: whatever a row holds,
    /// reading state returns rows or an error, never a panic.
    #[test]
    fn state_rows_never_panic(
        address in "\\PC{0,40}", provider in "\\PC{0,60}", status in "\\PC{0,12}",
        attrs in "\\PC{0,80}", deps in "\\PC{0,40}", deposed in any::<i64>(), serial in any::<i64>()
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        drop(tessera::state::SqliteStore::open(&path).unwrap());
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute(
            "INSERT INTO resources (address, id, deposed, provider, status, attrs, deps, serial) VALUES (?1, 'id', ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![address, deposed, provider, status, attrs, deps, serial],
        ).unwrap();
        drop(conn);
        if let Ok(store) = tessera::state::SqliteStore::open(&path) {
            use tessera::state::StateStore;
            let _ = paused_runtime().block_on(store.resources());
        }
    }
}
