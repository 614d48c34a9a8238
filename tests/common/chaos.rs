//! The chaos harness's parts: a run directory whose `tessera apply` is SIGKILLed at a chosen
//! moment and run again, and the census that counts what the cloud holds against state. Each
//! cloud's chaos test lists its own objects (by ownership tag) and hands them to [`census`].

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tessera::state::{SqliteStore, StateStore};

#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub runs: usize,
    pub converged: usize,
    pub orphans: usize,
    pub duplicates: usize,
    pub killed_mid_run: usize,
}

impl Tally {
    /// Counts one run: whether the kill landed mid-run, how the run after it ended, what the cloud
    /// holds (`(id, address tag)`), what state records and how many intents are open, and, if
    /// known, how many objects the fleet has. Returns why the run did not converge, if it did not.
    #[allow(clippy::too_many_arguments)]
    pub fn count(
        &mut self,
        seed: u64,
        killed: bool,
        converged: Result<(), String>,
        objects: &[(String, String)],
        state: &BTreeSet<String>,
        open: usize,
        expected: Option<usize>,
    ) -> Option<String> {
        let (duplicates, cloud) = census(objects);
        self.runs += 1;
        self.killed_mid_run += usize::from(killed);
        self.duplicates += duplicates;
        self.orphans += cloud.difference(state).count();
        match converged {
            Ok(()) if *state == cloud && open == 0 && expected.is_none_or(|n| n == cloud.len()) => {
                self.converged += 1;
                None
            }
            Ok(()) => Some(format!("seed {seed}: state {state:?} vs cloud {cloud:?}, {open} open intents")),
            Err(e) => Some(format!("seed {seed}: {e}")),
        }
    }
}

/// What a chaos run does to the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Apply,
    Destroy,
}

impl Verb {
    fn args(self) -> [&'static str; 4] {
        let verb = match self {
            Verb::Apply => "apply",
            Verb::Destroy => "destroy",
        };
        [verb, "--auto-approve", "--lock-timeout", "30s"]
    }
}

pub struct Run {
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
}

impl Run {
    pub fn tessera(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tessera"));
        c.current_dir(&self.dir)
            .env("TESSERA_STATE", format!("sqlite://{}", self.dir.join("state.db").display()))
            .env("TESSERA_SIM_CLOUD", self.dir.join("sim.db"))
            // A crashed run's lease must expire quickly for the next run to take over.
            .env("TESSERA_LOCK_TTL", "1s")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Starts an apply and SIGKILLs it after `after`; true if it was still running.
    pub fn apply_and_kill(&self, spec: &Path, after: Duration) -> bool {
        self.run_and_kill(Verb::Apply, spec, after)
    }

    /// Starts `verb` on `spec` and SIGKILLs it after `after`; true if it was still running.
    pub fn run_and_kill(&self, verb: Verb, spec: &Path, after: Duration) -> bool {
        let mut child = self.tessera().args(verb.args()).arg(spec).spawn().expect("spawn");
        std::thread::sleep(after);
        let running = child.try_wait().ok().flatten().is_none();
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        running
    }

    pub fn apply(&self, spec: &Path) -> Result<(), String> {
        self.run(Verb::Apply, spec)
    }

    /// Runs `verb` on `spec` to the end; its stderr when it fails.
    pub fn run(&self, verb: Verb, spec: &Path) -> Result<(), String> {
        let out = self.tessera().args(verb.args()).arg(spec).output().expect("spawn");
        if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
    }

    pub fn plan_is_empty(&self, spec: &Path) -> bool {
        let out = self.tessera().args(["plan", "--detailed-exitcode"]).arg(spec).output().expect("spawn");
        if out.status.code() != Some(0) {
            // What is left to do is the diagnosis: show it with the failure.
            eprintln!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        }
        out.status.code() == Some(0)
    }

    pub async fn state(&self) -> (BTreeSet<String>, usize) {
        let store = SqliteStore::open(&self.dir.join("state.db")).expect("state");
        let ids = store.resources().await.expect("resources").into_iter().map(|r| r.id).collect();
        (ids, store.open_intents().await.expect("intents").len())
    }
}

/// Objects per ownership tag → (duplicates, all ids).
pub fn census(objects: &[(String, String)]) -> (usize, BTreeSet<String>) {
    let mut by_address: HashMap<&str, usize> = HashMap::new();
    for (_, address) in objects {
        *by_address.entry(address.as_str()).or_default() += 1;
    }
    let duplicates = by_address.values().map(|n| n - 1).sum();
    (duplicates, objects.iter().map(|(id, _)| id.clone()).collect())
}

pub fn report(name: &str, t: &Tally) {
    println!(
        "chaos {name}: runs={} converged={} orphans={} duplicates={} (killed mid-run: {})",
        t.runs, t.converged, t.orphans, t.duplicates, t.killed_mid_run
    );
}
