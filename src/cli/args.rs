//! The command line, as clap types.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use clap_complete::Shell;

use crate::compile::GraphFormat;

#[derive(Debug, Parser)]
#[command(name = "tessera", version, about = "One provider-neutral Fleet spec, Kubernetes clusters on every cloud")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: Global,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// State backend URL: `sqlite://PATH` or a plain path.
    #[arg(long, global = true, env = "TESSERA_STATE", default_value = "sqlite://.tessera/state.db", value_parser = not_empty)]
    pub state: String,
    /// `human` for people, `json` for CI (JSON documents, or JSON lines while applying).
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
    /// Where the simulated cloud keeps its resources, so that every run sees the same cloud.
    #[arg(long, global = true, env = "TESSERA_SIM_CLOUD", default_value = ".tessera/sim-cloud.db")]
    pub sim_cloud: PathBuf,
    /// Multiplies the sim's real-world durations (a 10-minute EKS control plane takes
    /// 10 min × this). 1 is real time, 0 is instant.
    #[arg(long, global = true, env = "TESSERA_SIM_TIME_SCALE", default_value_t = 0.002, value_parser = time_scale)]
    pub sim_time_scale: f64,
    /// Probability that a sim call is throttled (retried with backoff).
    #[arg(long, global = true, env = "TESSERA_SIM_THROTTLE_RATE", default_value_t = 0.0, value_parser = probability)]
    pub sim_throttle_rate: f64,
    /// Probability that a sim mutation fails fatally (before it has any effect).
    #[arg(long, global = true, env = "TESSERA_SIM_FAILURE_RATE", default_value_t = 0.0, value_parser = probability)]
    pub sim_failure_rate: f64,
    /// The sim clusters' Kubernetes APIs refuse every connection, as an API behind a firewall or
    /// a private endpoint seen from outside does (the cloud's own API still answers).
    #[arg(long, global = true, env = "TESSERA_SIM_KUBE_UNREACHABLE", default_value_t = false)]
    pub sim_kube_unreachable: bool,
    /// Test-only: these sim placements' nodes report NotReady once their control plane or a node
    /// pool has changed Kubernetes version (for rollout tests). Comma-separated placement names.
    #[arg(long, global = true, hide = true, env = "TESSERA_SIM_UNHEALTHY_AFTER_UPGRADE", value_delimiter = ',')]
    pub sim_unhealthy_after_upgrade: Vec<String>,
    /// How long a run's state lock lives without renewal: how soon a crashed run's lock can be
    /// taken over (e.g. `2m`). A live run renews it at a third of this.
    #[arg(long, global = true, env = "TESSERA_LOCK_TTL", value_parser = humantime::parse_duration, default_value = "2m")]
    pub lock_ttl: std::time::Duration,
    /// The approval policy. When it exists, eks/aks/gke placements (or those it names) are
    /// pipeline-only: read-only everywhere but `tessera pipeline apply`.
    #[arg(long, global = true, env = "TESSERA_POLICY", default_value = "policy.yaml")]
    pub policy: PathBuf,
    /// The audit chain's head as published outside the state (`tessera audit head` after each
    /// pipeline apply). Before any write, the state's chain must contain it and its policy
    /// binding must match the chain.
    #[arg(long, global = true, env = "TESSERA_AUDIT_HEAD")]
    pub audit_head: Option<String>,
    /// Log filter for diagnostics on stderr. A level (`debug`) is for Tessera's own lines only;
    /// directives (`tessera=debug,kube_client=debug`) are taken as written.
    #[arg(long, global = true, env = "TESSERA_LOG", default_value = "warn")]
    pub log: String,
    /// How long a server that cannot be reached at all (a cluster's Kubernetes API: refused,
    /// DNS, TLS, timeout) is retried before the calls to it fail. A step then fails within this
    /// plus one connection attempt (10 s).
    #[arg(long, global = true, env = "TESSERA_UNREACHABLE_FOR", value_parser = humantime::parse_duration, default_value = "150s")]
    pub unreachable_for: std::time::Duration,
}

/// A value that must be given when the option is: an empty `TESSERA_STATE=` must not mean a
/// throwaway database.
fn not_empty(s: &str) -> Result<String, String> {
    if s.trim().is_empty() { Err("must not be empty".into()) } else { Ok(s.to_string()) }
}

/// A finite number of at least 0, at most a million (beyond that a sim duration overflows).
fn time_scale(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("`{s}` is not a number"))?;
    if v.is_finite() && (0.0..=1e6).contains(&v) { Ok(v) } else { Err(format!("`{s}` is not between 0 and 1000000")) }
}

/// A probability: a finite number from 0 to 1.
fn probability(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&v) { Ok(v) } else { Err(format!("`{s}` is not a probability from 0 to 1")) }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a spec: syntax, names, versions, regions, machines, core-service coverage.
    Validate { spec: PathBuf },
    /// Show what apply would change; `-o` saves the plan for `apply --plan`.
    Plan {
        spec: PathBuf,
        /// Save the plan file here.
        #[arg(short = 'o', long = "out")]
        out: Option<PathBuf>,
        /// Plan the destruction of everything in state.
        #[arg(long)]
        destroy: bool,
        /// Exit 0 when nothing changes, 2 when something does, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Make the clouds match the spec, or carry out a saved plan.
    Apply {
        /// The fleet spec (optional with --plan: the plan's own spec path is checked).
        spec: Option<PathBuf>,
        /// Apply this saved plan instead of planning afresh; refused if stale.
        #[arg(long)]
        plan: Option<PathBuf>,
        /// Do not ask for confirmation.
        #[arg(long)]
        auto_approve: bool,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Delete everything the state records for this fleet, dependents first.
    Destroy {
        spec: PathBuf,
        #[arg(long)]
        auto_approve: bool,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Report changes made outside Tessera; exits 2 when there are any.
    Drift { spec: PathBuf },
    /// Check that every node of every cluster runs its core services (monitoring, logging), per
    /// pool, and, with alerting on, that each cluster's Alertmanager runs Tessera's routing and
    /// holds the heartbeat; exits 2 naming each uncovered node (its pool and the DaemonSet it
    /// lacks) and each placement whose alerting does not work.
    Verify { spec: PathBuf },
    /// Follow a spec (a file, or a path in a git repository at a ref) and report drift, pending
    /// changes and coverage as metrics and JSON-lines events, correcting drift where the policy
    /// allows. Runs until stopped; `--once` runs one tick (exit 0 in sync, 2 drift or pending,
    /// 1 error).
    Reconcile(ReconcileArgs),
    /// Print the resource graph.
    Graph {
        spec: PathBuf,
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
    /// Write every Kubernetes object Tessera would apply to one placement's cluster, one file
    /// per object: its own objects, and each chart release's objects as helm renders them where
    /// helm and the chart are on this machine (else the release's computed values).
    Render {
        spec: PathBuf,
        /// The placement whose objects to write.
        #[arg(long)]
        placement: String,
        /// A new or empty directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Inspect state.
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
    /// Print a kubeconfig for a placement's cluster (exec-plugin auth: no token is stored).
    Kubeconfig { placement: String },
    /// Make an approver's ed25519 key pair: OUT (private, mode 0600) and OUT.pub.
    Keygen {
        /// The private key's file; the public key goes beside it, ending in `.pub`.
        #[arg(long)]
        out: PathBuf,
        /// Overwrite key files that exist (never done otherwise).
        #[arg(long)]
        force: bool,
    },
    /// Sign a saved plan's (or policy change's) digest with an approver's private key. Shows
    /// what is signed first (as `show` does) and asks; without a terminal, `--yes` is needed.
    Approve {
        /// A plan from `tessera plan -o`, or a policy change from `tessera policy plan`.
        plan: PathBuf,
        #[arg(long)]
        key: PathBuf,
        /// Approver name recorded with the signature (default: the key file's name).
        #[arg(long)]
        name: Option<String>,
        /// Sign without asking (required when stdin is not a terminal).
        #[arg(long)]
        yes: bool,
    },
    /// Render a saved plan (actions and diffs), the approvals the policy asks of it, and who has
    /// signed; or a policy change and the policy it installs.
    Show {
        /// A plan from `tessera plan -o`, or a policy change from `tessera policy plan`.
        plan: PathBuf,
    },
    /// What only the pipeline runs.
    Pipeline {
        #[command(subcommand)]
        command: PipelineCommand,
    },
    /// Pipeline credentials, sealed with age.
    Creds {
        #[command(subcommand)]
        command: CredsCommand,
    },
    /// The audit hash chain of pipeline applies.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The policy bound to state: check a policy file, show the bound one, plan a change.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Print the spec's JSON Schema (for editors and linters).
    Schema,
    /// Print shell completions.
    Completions { shell: Shell },
}

#[derive(Debug, Clone, clap::Args)]
pub struct ReconcileArgs {
    /// The fleet spec: a file, or with --git the path inside the repository.
    pub spec: PathBuf,
    /// Follow this git repository (a local path or a URL) instead of a file.
    #[arg(long, env = "TESSERA_RECONCILE_GIT")]
    pub git: Option<String>,
    /// The branch, tag or commit to follow.
    #[arg(long = "ref", env = "TESSERA_RECONCILE_REF", default_value = "main", requires = "git")]
    pub git_ref: String,
    /// How often to tick (jittered by ±10%).
    #[arg(long, env = "TESSERA_RECONCILE_INTERVAL", value_parser = humantime::parse_duration, default_value = "5m")]
    pub interval: std::time::Duration,
    /// Run a single tick and exit: 0 in sync, 2 drift or pending, 1 error (for a scheduled job).
    #[arg(long)]
    pub once: bool,
    /// Serve /metrics, /healthz and /readyz here (not with --once).
    #[arg(long, env = "TESSERA_RECONCILE_LISTEN", default_value = "127.0.0.1:9464")]
    pub listen: std::net::SocketAddr,
    /// Write plan files for drift on pipeline-only placements here (lanes with `reconcile: correct-drift`).
    #[arg(long, env = "TESSERA_RECONCILE_PLAN_DIR")]
    pub plan_dir: Option<PathBuf>,
    /// Where the git mirror is kept.
    #[arg(long, env = "TESSERA_RECONCILE_WORK_DIR", default_value = ".tessera/reconcile")]
    pub work_dir: PathBuf,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Wait this long for a state lock held by another run (e.g. `5m`); default: fail at once.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub lock_timeout: Option<std::time::Duration>,
    /// Limit per action, retries included (e.g. `45m`); default: 3× its estimate, at least 10 min.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub action_timeout: Option<std::time::Duration>,
    /// Forget where an earlier rollout halted and start over, instead of reading the halted
    /// wave's gate again before anything changes.
    #[arg(long)]
    pub rollout_restart: bool,
    /// Set this placement aside (repeatable): its changes wait and its gate is not read, so a
    /// halted rollout goes on without it. Recorded in state; every plan says so.
    #[arg(long = "skip-placement", value_name = "NAME")]
    pub skip_placements: Vec<String>,
    /// Bring a placement set aside back (repeatable).
    #[arg(long = "unskip-placement", value_name = "NAME")]
    pub unskip_placements: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Apply an approved plan (or policy change): refused unless signed, fresh, unmodified,
    /// never applied, free of application workloads, and run with the identity the policy pins.
    Apply {
        plan: PathBuf,
        /// The pipeline's age identity (default: TESSERA_PIPELINE_IDENTITY).
        #[arg(long)]
        identity_file: Option<PathBuf>,
        /// Write credentials sealed with `tessera creds seal`: the only cloud credentials the
        /// pipeline uses (the environment's are ignored).
        #[arg(long)]
        creds: Option<PathBuf>,
        #[command(flatten)]
        run: RunArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum CredsCommand {
    /// Make the pipeline's age identity: OUT (secret: store it in the CI secret store) and print
    /// its recipient (public: seal credentials to it).
    Identity {
        #[arg(long)]
        out: PathBuf,
        /// The policy's lane whose approvals a change of the policy itself needs (printed into
        /// the `pipeline:` block).
        #[arg(long, default_value = "infra")]
        policy_lane: String,
    },
    /// Seal a credentials file (`aws: {accessKeyId, secretAccessKey}`) to the pipeline's recipient.
    Seal {
        #[arg(long)]
        recipient: String,
        #[arg(long = "in")]
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the chain: exit 1 if any record was changed, removed, reordered or not signed by the
    /// pipeline's key.
    Verify {
        /// A head hash published outside the state (by an earlier pipeline run): it must be in
        /// the chain, so that removing the newest records is detected too.
        #[arg(long)]
        head: Option<String>,
    },
    /// Verify the chain, then print its head hash alone (to publish it).
    Head,
    /// Print the records.
    Log,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check a policy file (default: --policy): format, keys, and that every lane and escalation
    /// can be satisfied by its approvers.
    Check { file: Option<PathBuf> },
    /// Show the policy this state is bound to.
    Show,
    /// Make a policy change from the bound policy to FILE, for approval in the lane the bound
    /// policy names (`pipeline.policyLane`) and `tessera pipeline apply`.
    Plan {
        file: PathBuf,
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Every recorded resource.
    List,
    /// One resource, with its attributes.
    Show { address: String },
    /// Recent state changes, oldest first.
    History {
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Intents left open by an interrupted run.
    Intents,
    /// Remove a lock left by a dead run (recorded in history).
    Unlock { lock_id: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_flags_are_range_checked() {
        for bad in ["inf", "1e300", "NaN", "-1", "x", ""] {
            assert!(time_scale(bad).is_err(), "{bad}");
        }
        assert_eq!(time_scale("0"), Ok(0.0));
        assert_eq!(time_scale("0.5"), Ok(0.5));
        for bad in ["2", "-0.1", "NaN", "inf"] {
            assert!(probability(bad).is_err(), "{bad}");
        }
        assert_eq!(probability("1"), Ok(1.0));
        assert!(not_empty("").is_err() && not_empty("  ").is_err());
        assert_eq!(not_empty("sqlite://x.db").as_deref(), Ok("sqlite://x.db"));
    }

    proptest::proptest! {
        #[test]
        fn range_checks_never_panic_and_accept_only_finite_values(s in "\\PC{0,12}") {
            if let Ok(v) = time_scale(&s) { proptest::prop_assert!(v.is_finite() && v >= 0.0); }
            if let Ok(v) = probability(&s) { proptest::prop_assert!((0.0..=1.0).contains(&v)); }
        }
    }
}
