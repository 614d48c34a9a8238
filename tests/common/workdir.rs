//! A scratch directory for CLI tests on the durable sim: the test's own state, sim cloud and
//! chart cache, and `tessera` run inside it.

use std::path::PathBuf;

use assert_cmd::Command;

pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `tessera` from the checkout, on this directory's state and sim cloud, with the sim's time
    /// standing still (a test that needs time to pass sets `TESSERA_SIM_TIME_SCALE` itself).
    pub fn tessera(&self) -> Command {
        let mut c = Command::cargo_bin("tessera").unwrap();
        c.current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("TESSERA_STATE", format!("sqlite://{}", self.path("state.db").display()))
            .env("TESSERA_SIM_CLOUD", self.path("sim.db"))
            .env("TESSERA_SIM_TIME_SCALE", "0")
            // A chart cache of the test's own: what is on this machine is what the test puts there.
            .env("XDG_CACHE_HOME", self.path("cache"))
            .env_remove("TESSERA_SIM_UNHEALTHY_AFTER_UPGRADE")
            .env("NO_COLOR", "1");
        c
    }

    /// The exit code, and stdout then stderr.
    pub fn run(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = self.tessera().args(args).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.code(), text)
    }

    pub fn cloud(&self) -> tessera_sim::SimCloud {
        tessera_sim::SimCloud::durable(&self.path("sim.db"), Default::default()).unwrap()
    }
}

impl Default for Workdir {
    fn default() -> Self {
        Self::new()
    }
}
