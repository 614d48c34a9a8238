//! The team backend: PostgreSQL, for shared state between laptops and pipelines.
//!
//! The same model as SQLite. Writers serialize on the `meta` row (`SELECT … FOR UPDATE`) and
//! check the lease's fencing token in the same transaction, so a holder whose lease was taken
//! over cannot write even while its session is still connected. Session advisory locks are not
//! used for locking, because they die with a connection and say nothing about who holds them;
//! one transaction-scoped advisory lock only guards schema creation against a racing first run.

use async_trait::async_trait;
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls, Transaction};

use super::record::{IntentRow, RowText, decode_intent, decode_record, encode_record, op_text};
use super::*;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    lineage TEXT NOT NULL,
    serial BIGINT NOT NULL,
    fleet TEXT,
    fencing BIGINT NOT NULL DEFAULT 0,
    audit_head TEXT
);
CREATE TABLE IF NOT EXISTS applied_plans (digest TEXT PRIMARY KEY, at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (seq BIGINT PRIMARY KEY, record TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS policy (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    digest TEXT NOT NULL,
    text TEXT NOT NULL,
    source TEXT NOT NULL,
    bound_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS resources (
    address TEXT NOT NULL,
    id TEXT NOT NULL,
    deposed BOOLEAN NOT NULL DEFAULT FALSE,
    provider TEXT NOT NULL,
    status TEXT NOT NULL,
    attrs TEXT NOT NULL,
    deps TEXT NOT NULL,
    serial BIGINT NOT NULL,
    PRIMARY KEY (address, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS one_current_object ON resources(address) WHERE NOT deposed;
CREATE TABLE IF NOT EXISTS lock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    lock_id TEXT NOT NULL,
    holder TEXT NOT NULL,
    command TEXT NOT NULL,
    token BIGINT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS intents (
    id BIGSERIAL PRIMARY KEY,
    run_id TEXT NOT NULL,
    address TEXT NOT NULL,
    op TEXT NOT NULL,
    cloud_id TEXT,
    provider TEXT NOT NULL,
    desired TEXT,
    opened_at BIGINT NOT NULL,
    closed_at BIGINT,
    outcome TEXT
);
CREATE TABLE IF NOT EXISTS history (
    seq BIGSERIAL PRIMARY KEY,
    serial BIGINT NOT NULL,
    at BIGINT NOT NULL,
    run_id TEXT NOT NULL,
    address TEXT NOT NULL,
    change TEXT NOT NULL
);
";

pub struct PostgresStore {
    client: Mutex<Client>,
}

fn now() -> i64 {
    now_secs() as i64
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/db`). A `schema=NAME` query parameter keeps
    /// this state in its own schema (created if missing), so one database can hold many states.
    pub async fn connect(url: &str) -> Result<Self, StateError> {
        let (base, schema) = split_schema(url);
        let (client, connection) = tokio_postgres::connect(&base, NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!("PostgreSQL state connection closed: {e}");
            }
        });
        if let Some(schema) = &schema {
            if !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(StateError::Url(format!("schema `{schema}` must be letters, digits and '_'")));
            }
            client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}; SET search_path TO {schema}")).await?;
        }
        let mut client = client;
        let tx = client.transaction().await?;
        // Two first runs racing to create the schema would collide in the catalog.
        tx.execute("SELECT pg_advisory_xact_lock(7415)", &[]).await?;
        tx.batch_execute(SCHEMA).await?;
        tx.execute(
            "INSERT INTO meta (id, lineage, serial) VALUES (1, $1, 0) ON CONFLICT (id) DO NOTHING",
            &[&uuid::Uuid::new_v4().to_string()],
        )
        .await?;
        tx.commit().await?;
        Ok(Self { client: Mutex::new(client) })
    }

    /// Takes the writers' row lock, then checks the fencing token.
    async fn fenced(tx: &Transaction<'_>, lease: &Lease) -> Result<(), StateError> {
        tx.execute("SELECT fencing FROM meta WHERE id = 1 FOR UPDATE", &[]).await?;
        let current: Option<i64> = tx.query_opt("SELECT token FROM lock WHERE id = 1", &[]).await?.map(|r| r.get(0));
        match current {
            Some(t) if t as u64 == lease.token => Ok(()),
            other => Err(StateError::Fenced { ours: lease.token, current: other.unwrap_or(0) as u64 }),
        }
    }

    async fn bump(tx: &Transaction<'_>, run_id: &str, address: &str, change: &str) -> Result<u64, StateError> {
        let serial: i64 =
            tx.query_one("UPDATE meta SET serial = serial + 1 WHERE id = 1 RETURNING serial", &[]).await?.get(0);
        tx.execute(
            "INSERT INTO history (serial, at, run_id, address, change) VALUES ($1, $2, $3, $4, $5)",
            &[&serial, &now(), &run_id, &address, &change],
        )
        .await?;
        Ok(serial as u64)
    }

    /// Appends `make`'s record after the current head, inside the caller's transaction.
    async fn append_in(tx: &Transaction<'_>, make: &RecordMaker<'_>) -> Result<String, StateError> {
        let last = tx.query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[]).await?;
        let (seq, prev): (i64, String) = match last {
            Some(r) => (r.try_get::<_, i64>(0)? + 1, r.try_get(1)?),
            None => (1, super::audit::GENESIS.to_string()),
        };
        let record = make(&prev);
        let hash = super::audit::chain(&prev, &record);
        tx.execute(
            "INSERT INTO audit (seq, record, prev, hash) VALUES ($1, $2, $3, $4)",
            &[&seq, &record, &prev, &hash],
        )
        .await?;
        tx.execute("UPDATE meta SET audit_head = $1 WHERE id = 1", &[&hash]).await?;
        Ok(hash)
    }

    /// A history row at the current serial, for changes that are not resource changes.
    async fn note(tx: &Transaction<'_>, by: &str, change: &str) -> Result<(), StateError> {
        tx.execute(
            "INSERT INTO history (serial, at, run_id, address, change) SELECT serial, $1, $2, '-', $3 FROM meta WHERE id = 1",
            &[&now(), &by, &change],
        )
        .await?;
        Ok(())
    }

    async fn put(tx: &Transaction<'_>, r: &ResourceRecord, serial: u64) -> Result<(), StateError> {
        let row = encode_record(r);
        tx.execute(
            "INSERT INTO resources (address, id, deposed, provider, status, attrs, deps, serial) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[&row.address, &row.id, &row.deposed, &row.provider, &row.status, &row.attrs, &row.deps, &(serial as i64)],
        )
        .await?;
        Ok(())
    }
}

fn policy_from_row(r: &tokio_postgres::Row) -> Result<BoundPolicy, StateError> {
    Ok(BoundPolicy {
        digest: r.try_get(0)?,
        text: r.try_get(1)?,
        source: r.try_get(2)?,
        bound_at: r.try_get::<_, i64>(3)?.max(0) as u64,
    })
}

/// Splits an optional `schema=` query parameter off a connection URL.
fn split_schema(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else { return (url.to_string(), None) };
    let mut schema = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("schema=") {
            Some(s) => {
                schema = Some(s.to_string());
                false
            }
            None => true,
        })
        .collect();
    let base = if rest.is_empty() { base.to_string() } else { format!("{base}?{}", rest.join("&")) };
    (base, schema)
}

#[async_trait]
impl StateStore for PostgresStore {
    async fn meta(&self) -> Result<StateMeta, StateError> {
        let c = self.client.lock().await;
        let r = c.query_one("SELECT lineage, serial, fleet FROM meta WHERE id = 1", &[]).await?;
        Ok(StateMeta { lineage: r.get(0), serial: r.get::<_, i64>(1) as u64, fleet: r.get(2) })
    }

    async fn bind_fleet(&self, fleet: &str) -> Result<(), StateError> {
        let mut c = self.client.lock().await;
        let tx = c.transaction().await?;
        let found: Option<String> = tx.query_one("SELECT fleet FROM meta WHERE id = 1 FOR UPDATE", &[]).await?.get(0);
        match found {
            Some(f) if f != fleet => return Err(StateError::WrongFleet { expected: fleet.into(), found: f }),
            Some(_) => {}
            None => {
                tx.execute("UPDATE meta SET fleet = $1 WHERE id = 1", &[&fleet]).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn resources(&self) -> Result<Vec<ResourceRecord>, StateError> {
        let c = self.client.lock().await;
        let rows = c
            .query("SELECT address, provider, id, status, attrs, deps, deposed FROM resources ORDER BY address, deposed, id", &[])
            .await?;
        rows.iter()
            .map(|r| {
                decode_record(&RowText {
                    address: r.get(0),
                    provider: r.get(1),
                    id: r.get(2),
                    status: r.get(3),
                    attrs: r.get(4),
                    deps: r.get(5),
                    deposed: r.get(6),
                })
            })
            .collect()
    }

    async fn lock(&self, holder: &str, command: &str, ttl_secs: u64) -> Result<Lease, StateError> {
        let mut c = self.client.lock().await;
        let tx = c.transaction().await?;
        tx.execute("SELECT fencing FROM meta WHERE id = 1 FOR UPDATE", &[]).await?;
        let now_s = now();
        let existing = tx
            .query_opt("SELECT lock_id, holder, command, acquired_at, expires_at FROM lock WHERE id = 1", &[])
            .await?;
        if let Some(r) = existing.filter(|r| r.get::<_, i64>(4) > now_s) {
            let acquired: i64 = r.get(3);
            return Err(StateError::Locked {
                holder: r.get(1),
                command: r.get(2),
                since: humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(acquired as u64),
                )
                .to_string(),
                lock_id: r.get(0),
            });
        }
        let token: i64 =
            tx.query_one("UPDATE meta SET fencing = fencing + 1 WHERE id = 1 RETURNING fencing", &[]).await?.get(0);
        let lease = Lease {
            lock_id: uuid::Uuid::new_v4().to_string(),
            holder: holder.into(),
            command: command.into(),
            token: token as u64,
            acquired_at: now_s as u64,
            expires_at: (now_s as u64) + ttl_secs,
        };
        tx.execute(
            "INSERT INTO lock (id, lock_id, holder, command, token, acquired_at, expires_at) VALUES (1, $1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO UPDATE SET lock_id = EXCLUDED.lock_id, holder = EXCLUDED.holder, command = EXCLUDED.command,
               token = EXCLUDED.token, acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at",
            &[&lease.lock_id, &lease.holder, &lease.command, &token, &now_s, &(lease.expires_at as i64)],
        )
        .await?;
        tx.commit().await?;
        Ok(lease)
    }

    async fn renew(&self, lease: &Lease, ttl_secs: u64) -> Result<Lease, StateError> {
        let mut c = self.client.lock().await;
        let tx = c.transaction().await?;
        Self::fenced(&tx, lease).await?;
        let expires_at = now_secs() + ttl_secs;
        tx.execute("UPDATE lock SET expires_at = $1 WHERE id = 1", &[&(expires_at as i64)]).await?;
        tx.commit().await?;
        Ok(Lease { expires_at, ..lease.clone() })
    }

    async fn unlock(&self, lease: &Lease) -> Result<(), StateError> {
        let c = self.client.lock().await;
        c.execute("DELETE FROM lock WHERE id = 1 AND token = $1", &[&(lease.token as i64)]).await?;
        Ok(())
    }

    async fn force_unlock(&self, lock_id: &str, by: &str) -> Result<(), StateError> {
        let mut c = self.client.lock().await;
        let tx = c.transaction().await?;
        let removed = tx.execute("DELETE FROM lock WHERE lock_id = $1", &[&lock_id]).await?;
        if removed == 0 {
            return Err(StateError::NoSuchLock(lock_id.into()));
        }
        Self::note(&tx, by, &format!("force-unlock {lock_id}")).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn open_intent(&self, lease: &Lease, intent: &NewIntent<'_>) -> Result<i64, StateError> {
        let provider = serde_json::to_string(intent.provider).unwrap_or_default();
        let desired = intent.desired.map(|d| serde_json::to_string(d).unwrap_or_default());
        let mut c = self.client.lock().await;
        let tx = c.transaction().await?;
        Self::fenced(&tx, lease).await?;
        let id: i64 = tx
            .query_one(
                "INSERT INTO intents (run_id, address, op, cloud_id, provider, desired, opened_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                &[&intent.run_id, &intent.address.to_string(), &op_text(intent.op), &intent.cloud_id, &provider, &desired, &now()],
            )
            .await?
            .get(0);
        tx.commit().await?;
        Ok(id)
    }

    async fn commit(&self, lease: &Lease, intent: i64, outcome: Outcome) -> Result<u64, StateError> {
        let mut c = self.client.lock().await;
        let tx = c.transaction().await?;
        Self::fenced(&tx, lease).await?;
        let run_id: String = tx.query_one("SELECT run_id FROM intents WHERE id = $1", &[&intent]).await?.get(0);
        let (serial, text) = match &outcome {
            Outcome::Current(r) | Outcome::Replaced(r) => {
                let replaced = matches!(outcome, Outcome::Replaced(_));
                let change = if replaced { format!("replace with {}", r.id) } else { format!("set {}", r.id) };
                let serial = Self::bump(&tx, &run_id, &r.address.to_string(), &change).await?;
                if replaced {
                    tx.execute(
                        "UPDATE resources SET deposed = TRUE WHERE address = $1 AND NOT deposed",
                        &[&r.address.to_string()],
                    )
                    .await?;
                } else {
                    tx.execute("DELETE FROM resources WHERE address = $1 AND NOT deposed", &[&r.address.to_string()])
                        .await?;
                }
                Self::put(&tx, &ResourceRecord { deposed: false, ..r.clone() }, serial).await?;
                (serial, "ok".to_string())
            }
            Outcome::Deleted { address, id } => {
                let serial = Self::bump(&tx, &run_id, &address.to_string(), &format!("delete {id}")).await?;
                tx.execute("DELETE FROM resources WHERE address = $1 AND id = $2", &[&address.to_string(), id]).await?;
                (serial, "ok".to_string())
            }
            Outcome::Failed { message } => {
                let serial: i64 = tx.query_one("SELECT serial FROM meta WHERE id = 1", &[]).await?.get(0);
                (serial as u64, format!("failed: {message}"))
            }
        };
        tx.execute("UPDATE intents SET closed_at = $1, outcome = $2 WHERE id = $3", &[&now(), &text, &intent]).await?;
        tx.commit().await?;
        Ok(serial)
    }

    async fn open_intents(&self) -> Result<Vec<Intent>, StateError> {
        let c = self.client.lock().await;
        let rows = c
            .query(
                "SELECT id, run_id, address, op, cloud_id, provider, desired, opened_at FROM intents WHERE closed_at IS NULL ORDER BY id",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                decode_intent(IntentRow {
                    id: r.get(0),
                    run_id: r.get(1),
                    address: r.get(2),
                    op: r.get(3),
                    cloud_id: r.get(4),
                    provider: r.get(5),
                    desired: r.get(6),
                    opened_at: r.get::<_, i64>(7) as u64,
                })
            })
            .collect()
    }

    async fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, StateError> {
        let c = self.client.lock().await;
        let rows = c
            .query(
                "SELECT serial, at, run_id, address, change FROM history ORDER BY seq DESC LIMIT $1",
                &[&(limit as i64)],
            )
            .await?;
        let mut out: Vec<HistoryEntry> = rows
            .iter()
            .map(|r| HistoryEntry {
                serial: r.get::<_, i64>(0) as u64,
                at: r.get::<_, i64>(1) as u64,
                run_id: r.get(2),
                address: r.get(3),
                change: r.get(4),
            })
            .collect();
        out.reverse();
        Ok(out)
    }

    async fn claim_plan(&self, lease: &Lease, digest: &str) -> Result<bool, StateError> {
        let mut c = self.client.lock().await;
        let tx = c.transaction().await?;
        Self::fenced(&tx, lease).await?;
        let inserted = tx
            .execute(
                "INSERT INTO applied_plans (digest, at) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING",
                &[&digest, &now()],
            )
            .await?;
        tx.commit().await?;
        Ok(inserted == 1)
    }

    async fn append_audit_with(&self, lease: &Lease, make: &RecordMaker<'_>) -> Result<String, StateError> {
        let mut c = self.client.lock().await;
        let tx = c.transaction().await?;
        Self::fenced(&tx, lease).await?;
        let hash = Self::append_in(&tx, make).await?;
        tx.commit().await?;
        Ok(hash)
    }

    async fn audit_log(&self) -> Result<(Vec<AuditRow>, Option<String>), StateError> {
        let c = self.client.lock().await;
        let head: Option<String> = c.query_one("SELECT audit_head FROM meta WHERE id = 1", &[]).await?.try_get(0)?;
        let rows = c.query("SELECT seq, record, prev, hash FROM audit ORDER BY seq", &[]).await?;
        let rows = rows
            .iter()
            .map(|r| {
                Ok(AuditRow { seq: r.try_get(0)?, record: r.try_get(1)?, prev: r.try_get(2)?, hash: r.try_get(3)? })
            })
            .collect::<Result<_, tokio_postgres::Error>>()?;
        Ok((rows, head))
    }

    async fn bound_policy(&self) -> Result<Option<BoundPolicy>, StateError> {
        let c = self.client.lock().await;
        let row = c.query_opt("SELECT digest, text, source, bound_at FROM policy WHERE id = 1", &[]).await?;
        row.as_ref().map(policy_from_row).transpose()
    }

    async fn bind_policy(&self, policy: &BoundPolicy) -> Result<BoundPolicy, StateError> {
        let mut c = self.client.lock().await;
        let tx = c.transaction().await?;
        // The meta row lock serializes two first applies binding different policies.
        tx.execute("SELECT fencing FROM meta WHERE id = 1 FOR UPDATE", &[]).await?;
        let row = tx.query_opt("SELECT digest, text, source, bound_at FROM policy WHERE id = 1", &[]).await?;
        if let Some(bound) = row.as_ref().map(policy_from_row).transpose()? {
            return Ok(bound);
        }
        tx.execute(
            "INSERT INTO policy (id, digest, text, source, bound_at) VALUES (1, $1, $2, $3, $4)",
            &[&policy.digest, &policy.text, &policy.source, &(policy.bound_at as i64)],
        )
        .await?;
        Self::note(&tx, "bind policy", &format!("bind policy {}", policy.digest)).await?;
        tx.commit().await?;
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
        let mut c = self.client.lock().await;
        let tx = c.transaction().await?;
        Self::fenced(&tx, lease).await?;
        let claimed = tx
            .execute(
                "INSERT INTO applied_plans (digest, at) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING",
                &[&claim, &now()],
            )
            .await?;
        if claimed == 0 {
            return Ok(None);
        }
        let row = tx.query_opt("SELECT digest FROM policy WHERE id = 1", &[]).await?;
        let found: Option<String> = row.map(|r| r.try_get(0)).transpose()?;
        if found.as_deref() != Some(from) {
            return Err(StateError::PolicyMoved { expected: from.into(), found });
        }
        tx.execute(
            "UPDATE policy SET digest = $1, text = $2, source = $3, bound_at = $4 WHERE id = 1",
            &[&to.digest, &to.text, &to.source, &(to.bound_at as i64)],
        )
        .await?;
        Self::note(&tx, "policy change", &format!("policy {from} -> {}", to.digest)).await?;
        let hash = Self::append_in(&tx, make).await?;
        tx.commit().await?;
        Ok(Some(hash))
    }
}

#[cfg(test)]
mod tests {
    use super::split_schema;

    #[test]
    fn schema_parameter_is_split_off() {
        assert_eq!(split_schema("postgres://u@h/db"), ("postgres://u@h/db".into(), None));
        assert_eq!(split_schema("postgres://u@h/db?schema=s1"), ("postgres://u@h/db".into(), Some("s1".into())));
        assert_eq!(
            split_schema("postgres://u@h/db?sslmode=disable&schema=s1"),
            ("postgres://u@h/db?sslmode=disable".into(), Some("s1".into()))
        );
    }
}
