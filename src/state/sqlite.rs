//! The embedded default backend: one SQLite file, WAL mode.
//!
//! Calls run inline on the async task. Each is a short local transaction (microseconds with
//! `synchronous=NORMAL`, which in WAL mode still survives a process crash), which is cheaper than
//! a hop to a blocking thread.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::record::{IntentRow, RowText, decode_intent, decode_record, encode_record, op_text};
use super::*;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    lineage TEXT NOT NULL,
    serial INTEGER NOT NULL,
    fleet TEXT,
    fencing INTEGER NOT NULL DEFAULT 0,
    audit_head TEXT
);
CREATE TABLE IF NOT EXISTS applied_plans (digest TEXT PRIMARY KEY, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, record TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS policy (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    digest TEXT NOT NULL,
    text TEXT NOT NULL,
    source TEXT NOT NULL,
    bound_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS resources (
    address TEXT NOT NULL,
    id TEXT NOT NULL,
    deposed INTEGER NOT NULL DEFAULT 0,
    provider TEXT NOT NULL,
    status TEXT NOT NULL,
    attrs TEXT NOT NULL,
    deps TEXT NOT NULL,
    serial INTEGER NOT NULL,
    PRIMARY KEY (address, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS one_current_object ON resources(address) WHERE deposed = 0;
CREATE TABLE IF NOT EXISTS lock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    lock_id TEXT NOT NULL,
    holder TEXT NOT NULL,
    command TEXT NOT NULL,
    token INTEGER NOT NULL,
    acquired_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS intents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    address TEXT NOT NULL,
    op TEXT NOT NULL,
    cloud_id TEXT,
    provider TEXT NOT NULL,
    desired TEXT,
    opened_at INTEGER NOT NULL,
    closed_at INTEGER,
    outcome TEXT
);
CREATE TABLE IF NOT EXISTS history (
    serial INTEGER NOT NULL,
    at INTEGER NOT NULL,
    run_id TEXT NOT NULL,
    address TEXT NOT NULL,
    change TEXT NOT NULL
);
";

pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens the state at `path`, creating it if there is no file. A file that is there must be
    /// a whole state: an emptied, truncated or foreign file, or one missing a table or its `meta`
    /// row, is refused, never re-initialised.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        if path.exists() {
            let conn = Connection::open(path)?;
            Self::check_whole(&conn, path)?;
            return Self::init(conn, path);
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StateError::Dir { path: dir.to_path_buf(), source })?;
        }
        Self::create(path)?;
        let conn = Connection::open(path)?;
        Self::check_whole(&conn, path)?;
        Self::init(conn, path)
    }

    /// Makes a whole new state at `path`, atomically: built under another name, then linked into
    /// place. A run killed while creating it leaves no half state behind (a state file that is
    /// empty is then always someone's truncation, and refused), and of two runs creating it at
    /// once, one wins and the other opens the winner's.
    fn create(path: &Path) -> Result<(), StateError> {
        let dir_err = |source| StateError::Dir { path: path.to_path_buf(), source };
        let tmp = path.with_file_name(format!(
            ".{}.creating-{}-{}",
            path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        drop(Self::init(Connection::open(&tmp)?, path)?);
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(dir_err(e)),
        }
    }

    /// The tables every state has had since its first version, and its one `meta` row.
    fn check_whole(conn: &Connection, path: &Path) -> Result<(), StateError> {
        let damaged = |problem: String| StateError::Damaged { path: path.to_path_buf(), problem };
        if std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) == 0 {
            return Err(damaged("the file is empty".into()));
        }
        for table in ["meta", "resources", "lock", "intents", "history"] {
            let found: Option<String> = conn
                .query_row("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |r| r.get(0))
                .optional()
                .map_err(|e| damaged(format!("it is not a readable SQLite database ({e})")))?;
            if found.is_none() {
                return Err(damaged(format!("it has no `{table}` table")));
            }
        }
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM meta WHERE id = 1", [], |r| r.get(0))
            .map_err(|e| damaged(format!("its `meta` table cannot be read ({e})")))?;
        if rows != 1 {
            return Err(damaged("it has no `meta` row: its lineage and serial are lost".into()));
        }
        Ok(())
    }

    /// An empty state standing for one that does not exist yet: in memory, with
    /// [`super::NO_STATE_LINEAGE`].
    pub fn absent() -> Result<Self, StateError> {
        let store = Self::in_memory()?;
        store.conn().execute("UPDATE meta SET lineage = ?1 WHERE id = 1", [super::NO_STATE_LINEAGE])?;
        Ok(store)
    }

    pub fn in_memory() -> Result<Self, StateError> {
        Self::init(Connection::open_in_memory()?, Path::new(":memory:"))
    }

    fn init(conn: Connection, path: &Path) -> Result<Self, StateError> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")?;
        // One writer at a time from the first read of the version to the last migration: two
        // processes opening an old state never both migrate it, and a state that is refused is
        // refused before anything in it changes.
        let tx = rusqlite::Transaction::new_unchecked(&conn, rusqlite::TransactionBehavior::Immediate)?;
        let versioned: Option<String> = tx
            .query_row("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let found: Option<i64> = match versioned {
            Some(_) => tx.query_row("SELECT version FROM schema_version WHERE id = 1", [], |r| r.get(0)).optional()?,
            None => None,
        };
        let pending = super::schema::pending(found)
            .map_err(|problem| StateError::Schema { state: path.display().to_string(), problem })?;
        tx.execute_batch(SCHEMA)?;
        tx.execute(
            "INSERT OR IGNORE INTO meta (id, lineage, serial) VALUES (1, ?1, 0)",
            [uuid::Uuid::new_v4().to_string()],
        )?;
        if found != Some(super::schema::CURRENT) {
            tx.execute_batch(super::schema::VERSION_TABLE)?;
            for m in pending {
                tx.execute_batch(m.sqlite)?;
            }
            tx.execute(
                "INSERT INTO schema_version (id, version) VALUES (1, ?1) \
                 ON CONFLICT(id) DO UPDATE SET version = excluded.version",
                [super::schema::CURRENT],
            )?;
        }
        tx.commit()?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // Every statement is its own transaction, so a panic elsewhere cannot leave one open.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check_fence(tx: &Transaction<'_>, lease: &Lease) -> Result<(), StateError> {
        let current: Option<u64> = tx.query_row("SELECT token FROM lock WHERE id = 1", [], |r| r.get(0)).optional()?;
        match current {
            Some(t) if t == lease.token => Ok(()),
            other => Err(StateError::Fenced { ours: lease.token, current: other.unwrap_or(0) }),
        }
    }

    fn bump(tx: &Transaction<'_>, run_id: &str, address: &str, change: &str) -> Result<u64, StateError> {
        tx.execute("UPDATE meta SET serial = serial + 1 WHERE id = 1", [])?;
        let serial: u64 = tx.query_row("SELECT serial FROM meta WHERE id = 1", [], |r| r.get(0))?;
        tx.execute(
            "INSERT INTO history (serial, at, run_id, address, change) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![serial, now_secs(), run_id, address, change],
        )?;
        Ok(serial)
    }

    /// Appends `make`'s record after the current head, inside the caller's transaction.
    fn append_in(tx: &Transaction<'_>, make: &RecordMaker<'_>) -> Result<String, StateError> {
        let last: Option<(i64, String)> = tx
            .query_row("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (seq, prev) = last.map_or((1, super::audit::GENESIS.to_string()), |(s, h)| (s + 1, h));
        let record = make(&prev);
        let hash = super::audit::chain(&prev, &record);
        tx.execute(
            "INSERT INTO audit (seq, record, prev, hash) VALUES (?1, ?2, ?3, ?4)",
            params![seq, record, prev, hash],
        )?;
        tx.execute("UPDATE meta SET audit_head = ?1 WHERE id = 1", [&hash])?;
        Ok(hash)
    }

    fn read_policy(conn: &Connection) -> rusqlite::Result<Option<BoundPolicy>> {
        conn.query_row("SELECT digest, text, source, bound_at FROM policy WHERE id = 1", [], |r| {
            Ok(BoundPolicy { digest: r.get(0)?, text: r.get(1)?, source: r.get(2)?, bound_at: r.get(3)? })
        })
        .optional()
    }

    /// A history row at the current serial, for changes that are not resource changes.
    fn note(tx: &Transaction<'_>, by: &str, change: &str) -> Result<(), StateError> {
        tx.execute(
            "INSERT INTO history (serial, at, run_id, address, change) SELECT serial, ?1, ?2, '-', ?3 FROM meta WHERE id = 1",
            params![now_secs(), by, change],
        )?;
        Ok(())
    }

    fn put(tx: &Transaction<'_>, r: &ResourceRecord, serial: u64) -> Result<(), StateError> {
        let row = encode_record(r);
        tx.execute(
            "INSERT INTO resources (address, id, deposed, provider, status, attrs, deps, serial, schema_version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                row.address,
                row.id,
                row.deposed,
                row.provider,
                row.status,
                row.attrs,
                row.deps,
                serial,
                row.schema_version
            ],
        )?;
        Ok(())
    }
}

fn lease_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Lease> {
    Ok(Lease {
        lock_id: r.get(0)?,
        holder: r.get(1)?,
        command: r.get(2)?,
        token: r.get(3)?,
        acquired_at: r.get(4)?,
        expires_at: r.get(5)?,
    })
}

#[async_trait]
impl StateStore for SqliteStore {
    async fn meta(&self) -> Result<StateMeta, StateError> {
        let conn = self.conn();
        Ok(conn.query_row("SELECT lineage, serial, fleet FROM meta WHERE id = 1", [], |r| {
            Ok(StateMeta { lineage: r.get(0)?, serial: r.get(1)?, fleet: r.get(2)? })
        })?)
    }

    async fn bind_fleet(&self, fleet: &str) -> Result<(), StateError> {
        let conn = self.conn();
        let found: Option<String> = conn.query_row("SELECT fleet FROM meta WHERE id = 1", [], |r| r.get(0))?;
        match found {
            Some(f) if f != fleet => Err(StateError::WrongFleet { expected: fleet.into(), found: f }),
            Some(_) => Ok(()),
            None => {
                conn.execute("UPDATE meta SET fleet = ?1 WHERE id = 1", [fleet])?;
                Ok(())
            }
        }
    }

    async fn resources(&self) -> Result<Vec<ResourceRecord>, StateError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT address, provider, id, status, attrs, deps, deposed, schema_version FROM resources \
             ORDER BY address, deposed, id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(RowText {
                address: r.get(0)?,
                provider: r.get(1)?,
                id: r.get(2)?,
                status: r.get(3)?,
                attrs: r.get(4)?,
                deps: r.get(5)?,
                deposed: r.get(6)?,
                schema_version: r.get(7)?,
            })
        })?;
        let mut out = Vec::new();
        for row in rows {
            out.push(decode_record(&row?)?);
        }
        Ok(out)
    }

    async fn lock(&self, holder: &str, command: &str, ttl_secs: u64) -> Result<Lease, StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_secs();
        let existing = tx
            .query_row(
                "SELECT lock_id, holder, command, token, acquired_at, expires_at FROM lock WHERE id = 1",
                [],
                lease_from_row,
            )
            .optional()?;
        if let Some(l) = existing.filter(|l| l.expires_at > now) {
            return Err(StateError::Locked {
                holder: l.holder,
                command: l.command,
                since: humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(l.acquired_at),
                )
                .to_string(),
                lock_id: l.lock_id,
            });
        }
        tx.execute("UPDATE meta SET fencing = fencing + 1 WHERE id = 1", [])?;
        let token: u64 = tx.query_row("SELECT fencing FROM meta WHERE id = 1", [], |r| r.get(0))?;
        let lease = Lease {
            lock_id: uuid::Uuid::new_v4().to_string(),
            holder: holder.into(),
            command: command.into(),
            token,
            acquired_at: now,
            expires_at: now + ttl_secs,
        };
        tx.execute(
            "INSERT INTO lock (id, lock_id, holder, command, token, acquired_at, expires_at) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(id) DO UPDATE SET lock_id = excluded.lock_id, holder = excluded.holder, command = excluded.command,
               token = excluded.token, acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
            params![lease.lock_id, lease.holder, lease.command, lease.token, lease.acquired_at, lease.expires_at],
        )?;
        tx.commit()?;
        Ok(lease)
    }

    async fn renew(&self, lease: &Lease, ttl_secs: u64) -> Result<Lease, StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        Self::check_fence(&tx, lease)?;
        let expires_at = now_secs() + ttl_secs;
        tx.execute("UPDATE lock SET expires_at = ?1 WHERE id = 1", [expires_at])?;
        tx.commit()?;
        Ok(Lease { expires_at, ..lease.clone() })
    }

    async fn unlock(&self, lease: &Lease) -> Result<(), StateError> {
        let conn = self.conn();
        conn.execute("DELETE FROM lock WHERE id = 1 AND token = ?1", [lease.token])?;
        Ok(())
    }

    async fn force_unlock(&self, lock_id: &str, by: &str) -> Result<(), StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let removed = tx.execute("DELETE FROM lock WHERE lock_id = ?1", [lock_id])?;
        if removed == 0 {
            return Err(StateError::NoSuchLock(lock_id.into()));
        }
        Self::note(&tx, by, &format!("force-unlock {lock_id}"))?;
        tx.commit()?;
        Ok(())
    }

    async fn open_intent(&self, lease: &Lease, intent: &NewIntent<'_>) -> Result<i64, StateError> {
        let provider = serde_json::to_string(intent.provider).unwrap_or_default();
        let desired = intent.desired.map(|d| serde_json::to_string(d).unwrap_or_default());
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        Self::check_fence(&tx, lease)?;
        tx.execute(
            "INSERT INTO intents (run_id, address, op, cloud_id, provider, desired, opened_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![intent.run_id, intent.address.to_string(), op_text(intent.op), intent.cloud_id, provider, desired, now_secs()],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(id)
    }

    async fn commit(&self, lease: &Lease, intent: i64, outcome: Outcome) -> Result<u64, StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        Self::check_fence(&tx, lease)?;
        let run_id: String = tx.query_row("SELECT run_id FROM intents WHERE id = ?1", [intent], |r| r.get(0))?;
        let (serial, text) = match &outcome {
            Outcome::Current(r) => {
                let serial = Self::bump(&tx, &run_id, &r.address.to_string(), &format!("set {}", r.id))?;
                tx.execute("DELETE FROM resources WHERE address = ?1 AND deposed = 0", [r.address.to_string()])?;
                Self::put(&tx, &ResourceRecord { deposed: false, ..r.clone() }, serial)?;
                (serial, "ok".to_string())
            }
            Outcome::Replaced(r) => {
                let serial = Self::bump(&tx, &run_id, &r.address.to_string(), &format!("replace with {}", r.id))?;
                tx.execute(
                    "UPDATE resources SET deposed = 1 WHERE address = ?1 AND deposed = 0",
                    [r.address.to_string()],
                )?;
                Self::put(&tx, &ResourceRecord { deposed: false, ..r.clone() }, serial)?;
                (serial, "ok".to_string())
            }
            Outcome::Deleted { address, id } => {
                let serial = Self::bump(&tx, &run_id, &address.to_string(), &format!("delete {id}"))?;
                tx.execute("DELETE FROM resources WHERE address = ?1 AND id = ?2", params![address.to_string(), id])?;
                (serial, "ok".to_string())
            }
            Outcome::Failed { message } => {
                let serial: u64 = tx.query_row("SELECT serial FROM meta WHERE id = 1", [], |r| r.get(0))?;
                (serial, format!("failed: {message}"))
            }
        };
        tx.execute("UPDATE intents SET closed_at = ?1, outcome = ?2 WHERE id = ?3", params![now_secs(), text, intent])?;
        tx.commit()?;
        Ok(serial)
    }

    async fn open_intents(&self) -> Result<Vec<Intent>, StateError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, run_id, address, op, cloud_id, provider, desired, opened_at FROM intents WHERE closed_at IS NULL ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(IntentRow {
                id: r.get(0)?,
                run_id: r.get(1)?,
                address: r.get(2)?,
                op: r.get(3)?,
                cloud_id: r.get(4)?,
                provider: r.get(5)?,
                desired: r.get(6)?,
                opened_at: r.get(7)?,
            })
        })?;
        let mut out = Vec::new();
        for row in rows {
            out.push(decode_intent(row?)?);
        }
        Ok(out)
    }

    async fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, StateError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT serial, at, run_id, address, change FROM history ORDER BY rowid DESC LIMIT ?1")?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok(HistoryEntry {
                serial: r.get(0)?,
                at: r.get(1)?,
                run_id: r.get(2)?,
                address: r.get(3)?,
                change: r.get(4)?,
            })
        })?;
        let mut out: Vec<HistoryEntry> = rows.collect::<Result<_, _>>()?;
        out.reverse();
        Ok(out)
    }

    async fn claim_plan(&self, lease: &Lease, digest: &str) -> Result<bool, StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        Self::check_fence(&tx, lease)?;
        let inserted = tx
            .execute("INSERT OR IGNORE INTO applied_plans (digest, at) VALUES (?1, ?2)", params![digest, now_secs()])?;
        tx.commit()?;
        Ok(inserted == 1)
    }

    async fn is_plan_applied(&self, digest: &str) -> Result<bool, StateError> {
        let conn = self.conn();
        let n: i64 =
            conn.query_row("SELECT COUNT(*) FROM applied_plans WHERE digest = ?1", params![digest], |r| r.get(0))?;
        Ok(n > 0)
    }

    async fn append_audit_with(&self, lease: &Lease, make: &RecordMaker<'_>) -> Result<String, StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        Self::check_fence(&tx, lease)?;
        let hash = Self::append_in(&tx, make)?;
        tx.commit()?;
        Ok(hash)
    }

    async fn audit_log(&self) -> Result<(Vec<AuditRow>, Option<String>), StateError> {
        let conn = self.conn();
        let head: Option<String> = conn.query_row("SELECT audit_head FROM meta WHERE id = 1", [], |r| r.get(0))?;
        let mut stmt = conn.prepare("SELECT seq, record, prev, hash FROM audit ORDER BY seq")?;
        let rows = stmt
            .query_map([], |r| Ok(AuditRow { seq: r.get(0)?, record: r.get(1)?, prev: r.get(2)?, hash: r.get(3)? }))?;
        Ok((rows.collect::<Result<_, _>>()?, head))
    }

    async fn rollout(&self) -> Result<RolloutRecord, StateError> {
        let text: Option<String> =
            self.conn().query_row("SELECT record FROM rollout WHERE id = 1", [], |r| r.get(0)).optional()?;
        Ok(text.as_deref().map(RolloutRecord::decode).transpose()?.unwrap_or_default())
    }

    async fn set_rollout(&self, lease: &Lease, record: &RolloutRecord, change: &str) -> Result<(), StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        Self::check_fence(&tx, lease)?;
        if record.is_empty() {
            tx.execute("DELETE FROM rollout WHERE id = 1", [])?;
        } else {
            let text = serde_json::to_string(record).unwrap_or_default();
            tx.execute(
                "INSERT INTO rollout (id, record) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET record = excluded.record",
                [&text],
            )?;
        }
        Self::note(&tx, "rollout", change)?;
        tx.commit()?;
        Ok(())
    }

    async fn bound_policy(&self) -> Result<Option<BoundPolicy>, StateError> {
        Ok(Self::read_policy(&self.conn())?)
    }

    async fn bind_policy(&self, policy: &BoundPolicy) -> Result<BoundPolicy, StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(bound) = Self::read_policy(&tx)? {
            return Ok(bound);
        }
        tx.execute(
            "INSERT INTO policy (id, digest, text, source, bound_at) VALUES (1, ?1, ?2, ?3, ?4)",
            params![policy.digest, policy.text, policy.source, policy.bound_at],
        )?;
        Self::note(&tx, "bind policy", &format!("bind policy {}", policy.digest))?;
        tx.commit()?;
        Ok(policy.clone())
    }

    async fn change_policy(
        &self,
        lease: &Lease,
        claim: &str,
        from: &str,
        to: &BoundPolicy,
        make: &RecordMaker<'_>,
    ) -> Result<Option<String>, StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        Self::check_fence(&tx, lease)?;
        if tx.execute("INSERT OR IGNORE INTO applied_plans (digest, at) VALUES (?1, ?2)", params![claim, now_secs()])?
            == 0
        {
            return Ok(None);
        }
        let found = Self::read_policy(&tx)?.map(|p| p.digest);
        if found.as_deref() != Some(from) {
            return Err(StateError::PolicyMoved { expected: from.into(), found });
        }
        tx.execute(
            "UPDATE policy SET digest = ?1, text = ?2, source = ?3, bound_at = ?4 WHERE id = 1",
            params![to.digest, to.text, to.source, to.bound_at],
        )?;
        Self::note(&tx, "policy change", &format!("policy {from} -> {}", to.digest))?;
        let hash = Self::append_in(&tx, make)?;
        tx.commit()?;
        Ok(Some(hash))
    }
}
