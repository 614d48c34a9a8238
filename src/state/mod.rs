//! Stage 5: what Tessera knows exists. A [`StateStore`] trait and its SQLite backend.
//!
//! State holds:
//! - resources: address, cloud identity, provider, last observed attributes, dependencies.
//!   A resource being replaced create-before-destroy briefly has a second, *deposed* object under
//!   the same address until the old one is deleted;
//! - versions: a lineage (one per state) and a serial that increases with every committed change,
//!   plus a history row per change;
//! - a lock lease with a fencing token: every write checks the token, so a holder whose lease
//!   was taken over cannot write;
//! - an intent journal: an intent is opened before every provider mutation and closed, in the same
//!   transaction as the resource change, after it. An open intent after a crash marks a mutation
//!   whose outcome is unknown.
//! - the policy the state is bound to (its text and digest), so that every command on the state
//!   enforces the same pipeline-only rules wherever it runs;
//! - the audit chain of pipeline applies ([`audit`]), signed by the pipeline's key
//!   ([`SignedAuditStore`]).

pub mod audit;
pub mod holder;
mod postgres;
mod record;
pub mod schema;
mod signed;
mod sqlite;

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tessera_provider_api::{Address, Attrs, CloudId, Observed, ProviderRef, ResourceSpec};

pub use postgres::PostgresStore;
pub use record::{IntentRow, RowText, decode_intent, decode_record};
pub use signed::SignedAuditStore;
pub use sqlite::SqliteStore;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceRecord {
    pub address: Address,
    pub provider: ProviderRef,
    pub id: CloudId,
    pub status: String,
    pub attrs: Attrs,
    pub deps: Vec<Address>,
    /// Superseded by a replacement and waiting to be deleted.
    pub deposed: bool,
    /// The version of its type's schema that `attrs` have ([`tessera_provider_api::Schema`]).
    pub schema_version: u32,
}

impl ResourceRecord {
    /// The object as it was when last committed: its outputs for references and connections.
    pub fn observed(&self) -> Observed {
        Observed { id: self.id.clone(), status: self.status.clone(), attrs: self.attrs.clone() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateMeta {
    pub lineage: String,
    pub serial: u64,
    pub fleet: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub lock_id: String,
    pub holder: String,
    pub command: String,
    pub token: u64,
    pub acquired_at: u64,
    pub expires_at: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntentOp {
    Create,
    Update,
    Replace,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    pub id: i64,
    pub run_id: String,
    pub address: Address,
    pub op: IntentOp,
    /// The object acted on, when it already had an identity.
    pub cloud_id: Option<CloudId>,
    pub provider: ProviderRef,
    /// What a create, update or replacement asked for: enough to find its result after a crash.
    pub desired: Option<ResourceSpec>,
    pub opened_at: u64,
}

/// An intent about to be journaled.
#[derive(Debug, Clone, Copy)]
pub struct NewIntent<'a> {
    pub run_id: &'a str,
    pub address: &'a Address,
    pub op: IntentOp,
    pub cloud_id: Option<&'a str>,
    pub provider: &'a ProviderRef,
    pub desired: Option<&'a ResourceSpec>,
}

/// What a mutation did, committed together with closing its intent.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A new object is now the address's current one (create, or update in place).
    Current(ResourceRecord),
    /// A replacement was created; the previous current object is now deposed.
    Replaced(ResourceRecord),
    /// The object is gone from the cloud.
    Deleted { address: Address, id: CloudId },
    /// The call failed before changing anything; only the intent is closed.
    Failed { message: String },
}

/// Builds an audit record from the previous head hash (see [`StateStore::append_audit_with`]).
pub type RecordMaker<'a> = dyn for<'p> Fn(&'p str) -> String + Send + Sync + 'a;

/// One link of the audit chain (see [`audit`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    pub seq: i64,
    pub record: String,
    pub prev: String,
    pub hash: String,
}

/// The policy a state is bound to: recorded by the first apply under a policy, replaced only by
/// an approved policy change. The text is kept (public keys and rules, nothing secret) so that
/// the recorded rules can be enforced without the file, and a policy change can be checked
/// against the approvers of the policy it replaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundPolicy {
    /// SHA-256 of `text`, hex.
    pub digest: String,
    pub text: String,
    /// Where the file was when it was bound, to name it in errors.
    pub source: String,
    pub bound_at: u64,
}

/// Where a rollout stopped: the wave whose changes failed or whose gate did not pass. Kept until
/// a later apply sees that wave's gate pass (or is told to start over), so that no later wave
/// starts on the word of a run that never checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutHalt {
    /// The wave's number, from 1.
    pub wave: usize,
    /// The wave's placements, whose gate is read again before anything else changes.
    pub placements: Vec<String>,
    /// What stopped it, in words: the placement, the gate and what it saw, or the failed change.
    pub reason: String,
    /// The digest of the spec it ran under: a halt under another spec's waves is reported, and
    /// its wave read by the new spec's numbering.
    pub spec_digest: String,
    pub run_id: String,
    pub at: u64,
    /// When the wave's soak ends (unix ms), if the run stopped during it: the next apply waits
    /// out the rest before reading the gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak_until_ms: Option<u64>,
    /// Its changes did not all finish, so it never soaked: the next apply soaks it whole before
    /// reading its gate.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub soak_owed: bool,
}

/// A placement set aside by `apply --skip-placement`: its changes wait, its gate is not read,
/// until `apply --unskip-placement` brings it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetAside {
    pub run_id: String,
    pub at: u64,
    /// The halt it was under when set aside: it comes back with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halted: Option<RolloutHalt>,
}

/// What state keeps of rollouts between runs: where the last one halted, and the placements set
/// aside.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolloutRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halt: Option<RolloutHalt>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set_aside: BTreeMap<String, SetAside>,
}

impl RolloutRecord {
    /// A record as stored, never trusted: a state writer may have put anything there.
    pub fn decode(text: &str) -> Result<Self, StateError> {
        serde_json::from_str(text)
            .map_err(|e| StateError::Corrupt { address: "rollout".into(), reason: format!("the rollout record: {e}") })
    }

    pub fn is_empty(&self) -> bool {
        self.halt.is_none() && self.set_aside.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub serial: u64,
    pub at: u64,
    pub run_id: String,
    pub address: String,
    pub change: String,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StateError {
    #[error("state is locked by {holder} (command `{command}`, since {since}, lock id {lock_id})")]
    #[diagnostic(
        code(tessera::state::locked),
        help("wait for it to finish, pass --lock-timeout to wait, or if it died run `tessera state unlock {lock_id}`")
    )]
    Locked { holder: String, command: String, since: String, lock_id: String },
    #[error("this run's lock was lost (fencing token {ours}, current {current}); refusing to write")]
    #[diagnostic(code(tessera::state::fenced))]
    Fenced { ours: u64, current: u64 },
    #[error("no lock with id {0}")]
    NoSuchLock(String),
    #[error("state belongs to fleet `{found}`, not `{expected}`")]
    #[diagnostic(code(tessera::state::fleet), help("use a separate --state for each fleet"))]
    WrongFleet { expected: String, found: String },
    #[error("state row for {address} is corrupt: {reason}")]
    #[diagnostic(code(tessera::state::corrupt))]
    Corrupt { address: String, reason: String },
    #[error("unsupported state URL `{0}`")]
    #[diagnostic(
        code(tessera::state::url),
        help("use sqlite://PATH or a plain file path (PostgreSQL arrives with the team backend)")
    )]
    Url(String),
    #[error("state {path} is damaged: {problem}")]
    #[diagnostic(
        code(tessera::state::damaged),
        help(
            "Tessera never re-initialises a state that exists, so as not to build the fleet a second time: restore the file from a backup, or move it aside and apply to a new state (creates find the objects Tessera made by their ownership tags and adopt them)"
        )
    )]
    Damaged { path: PathBuf, problem: String },
    #[error("state {state} cannot be opened by this Tessera: {problem}")]
    #[diagnostic(
        code(tessera::state::schema),
        help("run the Tessera version that wrote this state (or a newer one); nothing was changed")
    )]
    Schema { state: String, problem: String },
    #[error("cannot create state directory {path}: {source}")]
    Dir { path: PathBuf, source: std::io::Error },
    #[error("the state's policy is {}, not {expected}: another policy change was applied first", found.as_deref().unwrap_or("(none)"))]
    #[diagnostic(code(tessera::state::policy_moved), help("make the policy change again against the current policy"))]
    PolicyMoved { expected: String, found: Option<String> },
    #[error("state database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("state database (PostgreSQL): {}", with_causes(.0))]
    #[diagnostic(code(tessera::state::postgres), help("check the --state URL and that the server is up"))]
    Postgres(#[from] tokio_postgres::Error),
    /// The server could not be reached, or the connection kept dropping, after every retry:
    /// nothing was done, and trying later may succeed.
    #[error("state database (PostgreSQL) unavailable after {attempts} attempts: {message}")]
    #[diagnostic(
        code(tessera::state::unavailable),
        help("check that the server is up and reachable; nothing was changed")
    )]
    Unavailable { attempts: usize, message: String },
    /// The connection was lost while a transaction was committing: it may or may not have
    /// landed. Not retried (it could apply twice); the intent journal settles it on the next run.
    #[error("state database (PostgreSQL): the connection was lost during a commit, whose outcome is unknown: {0}")]
    #[diagnostic(
        code(tessera::state::commit_unknown),
        help("run the command again: recovery reads the cloud and settles the open intent")
    )]
    CommitUnknown(String),
}

impl StateError {
    /// Whether the same call may succeed if made again later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Locked { .. })
    }
}

/// An error with each of its causes: tokio-postgres's own message is only the top line ("error
/// performing TLS handshake"), the reason is below it.
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let line = c.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        cause = c.source();
    }
    text
}

/// The state backend. Every write that follows a cloud mutation is one transaction, checked
/// against the caller's lease.
#[async_trait]
pub trait StateStore: Send + Sync {
    async fn meta(&self) -> Result<StateMeta, StateError>;
    /// Binds an empty state to `fleet`, or checks that it already belongs to it.
    async fn bind_fleet(&self, fleet: &str) -> Result<(), StateError>;
    async fn resources(&self) -> Result<Vec<ResourceRecord>, StateError>;

    async fn lock(&self, holder: &str, command: &str, ttl_secs: u64) -> Result<Lease, StateError>;
    async fn renew(&self, lease: &Lease, ttl_secs: u64) -> Result<Lease, StateError>;
    async fn unlock(&self, lease: &Lease) -> Result<(), StateError>;
    /// Removes a lock left by a dead process, and records that in history.
    async fn force_unlock(&self, lock_id: &str, by: &str) -> Result<(), StateError>;

    async fn open_intent(&self, lease: &Lease, intent: &NewIntent<'_>) -> Result<i64, StateError>;
    /// Applies `outcome`, closes the intent and bumps the serial, atomically. Returns the serial.
    async fn commit(&self, lease: &Lease, intent: i64, outcome: Outcome) -> Result<u64, StateError>;
    async fn open_intents(&self) -> Result<Vec<Intent>, StateError>;

    async fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, StateError>;

    /// Records that the plan with this digest is being applied. `false` if it was already: a
    /// replay.
    async fn claim_plan(&self, lease: &Lease, digest: &str) -> Result<bool, StateError>;
    /// Whether the plan with this digest was claimed already (read only: a replay is refused
    /// before anything else is checked, while the claim itself waits for the first write).
    async fn is_plan_applied(&self, digest: &str) -> Result<bool, StateError>;
    /// Appends a record to the audit chain; returns its hash (the new head).
    async fn append_audit(&self, lease: &Lease, record: &str) -> Result<String, StateError> {
        self.append_audit_with(lease, &|_prev: &str| record.to_string()).await
    }
    /// Appends the record that `make` builds from the previous head hash, in one fenced
    /// transaction, so that a record can sign its place in the chain; returns the new head.
    async fn append_audit_with(&self, lease: &Lease, make: &RecordMaker<'_>) -> Result<String, StateError>;
    /// The chain, oldest first, and the head hash recorded beside it.
    async fn audit_log(&self) -> Result<(Vec<AuditRow>, Option<String>), StateError>;

    /// What state keeps of rollouts: the halt, the placements set aside (empty: nothing).
    async fn rollout(&self) -> Result<RolloutRecord, StateError>;
    /// Replaces the rollout record, in one fenced transaction with a history row saying `change`;
    /// the serial does not move (no resource changed).
    async fn set_rollout(&self, lease: &Lease, record: &RolloutRecord, change: &str) -> Result<(), StateError>;

    /// Where the last rollout halted, if it did and no apply has gone past it since.
    async fn rollout_halt(&self) -> Result<Option<RolloutHalt>, StateError> {
        Ok(self.rollout().await?.halt)
    }
    /// Records where a rollout halted, or (`None`) that it went past the halt. The caller holds
    /// the lease, so nothing else writes the record between the read and the write.
    async fn set_rollout_halt(&self, lease: &Lease, halt: Option<&RolloutHalt>) -> Result<(), StateError> {
        let mut record = self.rollout().await?;
        record.halt = halt.cloned();
        let (_, change) = halt_history(halt);
        self.set_rollout(lease, &record, &change).await
    }

    /// The policy this state is bound to, if any.
    async fn bound_policy(&self) -> Result<Option<BoundPolicy>, StateError>;
    /// Binds an unbound state to `policy`. Returns what the state is bound to afterwards: `policy`,
    /// or the policy bound before (the caller compares). Does not move the serial, so plans made
    /// before stay fresh.
    async fn bind_policy(&self, policy: &BoundPolicy) -> Result<BoundPolicy, StateError>;
    /// Applies an approved policy change in one fenced transaction: claims `claim` like
    /// [`StateStore::claim_plan`] (`None`, and nothing changed, if it was claimed before), checks
    /// that the bound policy is still `from`, binds `to`, and appends the audit record `make`
    /// builds from the previous head (the caller signs it: it names the next key). Returns the
    /// new head.
    async fn change_policy(
        &self,
        lease: &Lease,
        claim: &str,
        from: &str,
        to: &BoundPolicy,
        make: &RecordMaker<'_>,
    ) -> Result<Option<String>, StateError>;
}

/// Opens the store named by `url`: `postgres://…` (or `postgresql://…`), `sqlite://PATH`, or
/// a bare path (SQLite).
/// The lineage of a state that does not exist yet, as a read-only command sees it. A plan made
/// against it applies to a state that has never been written (serial 0), whatever lineage that
/// state was given when `apply` created it.
pub const NO_STATE_LINEAGE: &str = "none (no state yet)";

/// [`open`] for commands that only read (plan, drift, verify, state list…): a SQLite state that
/// does not exist is read as empty and not created, so only `apply` makes a state, and a typo in
/// a path never leaves a stray state behind.
pub async fn open_for_reading(url: &str) -> Result<Box<dyn StateStore>, StateError> {
    let is_sqlite = !url.contains("://") || url.starts_with("sqlite://");
    let path = url.strip_prefix("sqlite://").unwrap_or(url);
    if is_sqlite && !url.is_empty() && !std::path::Path::new(path).exists() {
        return Ok(Box::new(SqliteStore::absent()?));
    }
    open(url).await
}

pub async fn open(url: &str) -> Result<Box<dyn StateStore>, StateError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Box::new(PostgresStore::connect(url).await?));
    }
    if url.contains("://") && !url.starts_with("sqlite://") {
        return Err(StateError::Url(url.to_string()));
    }
    let path = url.strip_prefix("sqlite://").unwrap_or(url);
    Ok(Box::new(SqliteStore::open(std::path::Path::new(path))?))
}

/// The history row a halt record's change writes: who (the run) and what.
pub fn halt_history(halt: Option<&RolloutHalt>) -> (String, String) {
    match halt {
        Some(h) => (h.run_id.clone(), format!("rollout halted at wave {}: {}", h.wave, h.reason)),
        None => ("rollout".into(), "rollout went past its halt".into()),
    }
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}
