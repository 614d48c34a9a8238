//! The test repository of the pipeline tests: four approvers' keys, a policy that pins the
//! pipeline's identity, the quickstart fleet on the sim, and the CLI run against them.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use tessera::state::AuditRow;

pub struct Pipe {
    pub dir: tempfile::TempDir,
    pub state: String,
}

pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The test repository's pipeline-only providers: the sim (and its Kubernetes objects) stand in
/// for a cloud.
pub const PIPELINE_ONLY: &str = "sim, simkube, eks, kube";

/// Which state backend a test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh schema in the local PostgreSQL (as tests/state.rs makes them).
pub fn postgres_url() -> String {
    let base =
        std::env::var("TESSERA_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    format!("{base}?schema=t_{}", uuid::Uuid::new_v4().simple())
}

/// The policy of the test repository: infra (alice, bob, dave) needs 2 approvals for the sim and
/// eks, 3 to delete or replace a cluster; local (carol) needs 1 for kind.
pub fn policy_text(keys: &[String; 4], pipeline_only: &str, recipient: &str, audit_key: &str) -> String {
    format!(
        "apiVersion: tessera.dev/v1alpha1
kind: Policy
approvers:
  - {{ name: alice, key: {}, lanes: [infra] }}
  - {{ name: bob, key: {}, lanes: [infra] }}
  - {{ name: carol, key: {}, lanes: [local] }}
  - {{ name: dave, key: {}, lanes: [infra] }}
lanes:
  - {{ name: infra, approvals: 2, providers: [sim, simkube, eks, kube], placements: [\"*\"] }}
  - {{ name: local, approvals: 1, providers: [kind] }}
escalations:
  - {{ actions: [delete, replace], types: [sim.cluster, eks.cluster], approvals: 3 }}
pipelineOnly:
  providers: [{pipeline_only}]
pipeline: {{ recipient: {recipient}, auditKey: {audit_key}, policyLane: infra }}
",
        keys[0], keys[1], keys[2], keys[3]
    )
}

/// `tessera creds identity` prints the recipient and audit key to pin.
pub fn pinned(out: &Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let field =
        |name: &str| stdout.lines().find_map(|l| l.trim().strip_prefix(name)).map(|v| v.trim().to_string()).unwrap();
    (field("recipient:"), field("auditKey:"))
}

impl Pipe {
    /// A repository with four approvers, a policy that makes the sim placements pipeline-only
    /// (so that the sim stands in for a cloud) and pins the pipeline's identity.
    pub fn new() -> Self {
        Self::with(Backend::Sqlite, PIPELINE_ONLY)
    }

    pub fn with(backend: Backend, pipeline_only: &str) -> Self {
        let state = match backend {
            Backend::Sqlite => "sqlite://state.db".to_string(),
            Backend::Postgres => postgres_url(),
        };
        let p = Self { dir: tempfile::tempdir().unwrap(), state };
        for who in ["alice", "bob", "carol", "dave"] {
            p.run(&["keygen", "--out", who]).assert().success();
        }
        let key = |who: &str| std::fs::read_to_string(p.path(&format!("{who}.pub"))).unwrap().trim().to_string();
        let identity = p.run(&["creds", "identity", "--out", "pipeline.key"]).output().unwrap();
        assert!(identity.status.success(), "{}", text(&identity));
        let (recipient, audit_key) = pinned(&identity);
        let keys = [key("alice"), key("bob"), key("carol"), key("dave")];
        std::fs::write(p.path("policy.yaml"), policy_text(&keys, pipeline_only, &recipient, &audit_key)).unwrap();
        std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/quickstart.yaml"), p.path("fleet.yaml"))
            .unwrap();
        p
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn run(&self, args: &[&str]) -> Command {
        self.run_in(self.dir.path(), args)
    }

    /// The CLI run from `dir`, on this repository's state and sim cloud.
    pub fn run_in(&self, dir: &Path, args: &[&str]) -> Command {
        let state = match self.state.strip_prefix("sqlite://") {
            Some(file) => format!("sqlite://{}", self.path(file).display()),
            None => self.state.clone(),
        };
        let mut c = Command::cargo_bin("tessera").unwrap();
        c.current_dir(dir)
            .args(args)
            .env("TESSERA_STATE", state)
            .env("TESSERA_SIM_CLOUD", self.path("sim.db"))
            .env("TESSERA_SIM_TIME_SCALE", "0")
            .env_remove("TESSERA_PIPELINE_IDENTITY")
            .env_remove("TESSERA_POLICY")
            .env("NO_COLOR", "1");
        c
    }

    /// Approved by `who` and applied by the pipeline.
    pub fn approved_apply(&self, plan: &str, who: &[&str]) {
        for w in who {
            self.approve(plan, w);
        }
        let o = self.pipeline_apply(plan);
        assert!(o.status.success(), "{}", text(&o));
    }

    pub fn audit_verify(&self, extra: &[&str]) -> Output {
        let mut args = vec!["audit", "verify"];
        args.extend_from_slice(extra);
        self.run(&args).output().unwrap()
    }

    pub fn plan(&self, name: &str) -> String {
        self.run(&["plan", "fleet.yaml", "-o", name]).assert().success();
        name.to_string()
    }

    pub fn approve(&self, plan: &str, who: &str) {
        self.run(&["approve", plan, "--key", who, "--yes"]).assert().success();
    }

    pub fn pipeline_apply(&self, plan: &str) -> Output {
        self.run(&["pipeline", "apply", plan, "--identity-file", "pipeline.key"]).output().unwrap()
    }

    /// What the cloud holds and the state's serial: a refusal must change neither.
    pub fn snapshot(&self) -> (Vec<String>, serde_json::Value) {
        let sim = self.path("sim.db");
        let mut ids: Vec<String> = if sim.exists() {
            tessera_sim::SimCloud::durable(&sim, Default::default())
                .unwrap()
                .resources()
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect()
        } else {
            Vec::new()
        };
        ids.sort();
        let out = self.run(&["state", "list", "--output", "json"]).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (ids, v["meta"]["serial"].clone())
    }

    /// Raw SQL on the state, as someone with write access to the database would run it.
    pub fn sql(&self, statements: &str) {
        match self.state.strip_prefix("sqlite://") {
            Some(file) => rusqlite::Connection::open(self.path(file)).unwrap().execute_batch(statements).unwrap(),
            None => {
                let (base, query) = self.state.split_once('?').unwrap();
                let schema = query.trim_start_matches("schema=").to_string();
                tokio::runtime::Runtime::new().unwrap().block_on(async {
                    let (client, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls).await.unwrap();
                    tokio::spawn(conn);
                    client.batch_execute(&format!("SET search_path TO {schema}; {statements}")).await.unwrap();
                });
            }
        }
    }

    pub fn store_url(&self) -> String {
        match self.state.strip_prefix("sqlite://") {
            Some(file) => format!("sqlite://{}", self.path(file).display()),
            None => self.state.clone(),
        }
    }

    pub fn audit_rows(&self) -> Vec<AuditRow> {
        let url = self.store_url();
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async { tessera::state::open(&url).await.unwrap().audit_log().await.unwrap().0 })
    }

    /// Replaces the whole chain and its head, as an attacker with write access would.
    pub fn write_chain(&self, rows: &[AuditRow]) {
        let q = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let mut sql = String::from("DELETE FROM audit;");
        for r in rows {
            sql += &format!(
                "INSERT INTO audit (seq, record, prev, hash) VALUES ({}, {}, {}, {});",
                r.seq,
                q(&r.record),
                q(&r.prev),
                q(&r.hash)
            );
        }
        let head = rows.last().map_or("NULL".to_string(), |r| q(&r.hash));
        sql += &format!("UPDATE meta SET audit_head = {head} WHERE id = 1;");
        self.sql(&sql);
    }

    /// The state's policy binding as an SQL statement that puts it back (a backup, in effect).
    pub fn bound_policy_row(&self) -> String {
        let url = self.store_url();
        let b = tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async { tessera::state::open(&url).await.unwrap().bound_policy().await.unwrap().unwrap() });
        let q = |s: &str| s.replace('\'', "''");
        format!(
            "INSERT INTO policy (id, digest, text, source, bound_at) VALUES (1, '{}', '{}', '{}', {});",
            q(&b.digest),
            q(&b.text),
            q(&b.source),
            b.bound_at
        )
    }

    /// Nothing in the cloud, nothing in state.
    pub fn untouched(&self) -> bool {
        let sim = self.path("sim.db");
        let cloud_empty = !sim.exists()
            || tessera_sim::SimCloud::durable(&sim, Default::default()).unwrap().resources().unwrap().is_empty();
        let out = self.run(&["state", "list", "--output", "json"]).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        cloud_empty && v["resources"].as_array().unwrap().is_empty()
    }
}

/// Without whitespace and miette's margins: diagnostics wrap long lines anywhere.
pub fn unwrapped(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace() && *c != '│').collect()
}

#[track_caller]
pub fn refused(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(1), "{}", text(o));
    assert!(unwrapped(&text(o)).contains(&unwrapped(needle)), "expected `{needle}` in:\n{}", text(o));
}
