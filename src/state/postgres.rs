//! ## Overview
//!
//! The team backend: PostgreSQL, for shared state between laptops and pipelines.
//!
//! The same model as SQLite. Writers serialize on the `meta` row (`SELECT … FOR UPDATE`) and
//! check the lease's fencing token in the same transaction, so a holder whose lease was taken
//! over cannot write even while its session is still connected. Session advisory locks are not
//! used for locking, because they die with a connection and say nothing about who holds them;
//! one transaction-scoped advisory lock only guards schema creation against a racing first run.
//!
//! Every write is one transaction run by the [`session::Session`], which reconnects with backoff
//! when the connection is lost and runs a write again only when it cannot have committed. The
//! connection is encrypted as the URL's `sslmode` says ([`tls`]); the URL is read by [`target`];
//! the tables are made and migrated on connecting by [`tables`].
//! Rows are read through [`cells::Cells`]: a NULL or a wrong type is a [`StateError::Corrupt`]
//! naming the column, never a panic.

mod cells;
mod session;
mod tables;
mod target;
mod tls;

use async_trait::async_trait;
use tokio_postgres::Client;

use self::cells::Cells;
use self::session::Session;
use self::target::Target;
use super::record::{IntentRow, RowText, decode_intent, decode_record, encode_record, op_text};
use super::*;

pub struct PostgresStore {
    session: Session,
}

fn now() -> i64 {
    now_secs() as i64
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/db`, see [`target`] for the query
    /// parameters: `schema=NAME`, `sslmode=…`, `sslrootcert=PATH`) and creates the tables if
    /// they are missing.
    pub async fn connect(url: &str) -> Result<Self, StateError> {
        let target = Target::parse(url)?;
        let schema = target.schema.clone();
        let schema = schema.as_deref();
        let session = Session::open(target).await?;
        session.write(|tx| Box::pin(async move { tables::prepare(&tx, schema).await })).await?;
        Ok(Self { session })
    }

    /// Takes the writers' row lock, then checks the fencing token.
    async fn fenced(tx: &Client, lease: &Lease) -> Result<(), StateError> {
        tx.execute("SELECT fencing FROM meta WHERE id = 1 FOR UPDATE", &[]).await?;
        let row = tx.query_opt("SELECT token FROM lock WHERE id = 1", &[]).await?;
        let current = row.as_ref().map(|r| Cells::new(r, "lock").count("token")).transpose()?;
        match current {
            Some(t) if t == lease.token => Ok(()),
            other => Err(StateError::Fenced { ours: lease.token, current: other.unwrap_or(0) }),
        }
    }

    async fn bump(tx: &Client, run_id: &str, address: &str, change: &str) -> Result<u64, StateError> {
        let row = tx.query_one("UPDATE meta SET serial = serial + 1 WHERE id = 1 RETURNING serial", &[]).await?;
        let serial = Cells::new(&row, "meta").count("serial")?;
        tx.execute(
            "INSERT INTO history (serial, at, run_id, address, change) VALUES ($1, $2, $3, $4, $5)",
            &[&(serial as i64), &now(), &run_id, &address, &change],
        )
        .await?;
        Ok(serial)
    }

    /// Appends `make`'s record after the current head, inside the caller's transaction.
    async fn append_in(tx: &Client, make: &RecordMaker<'_>) -> Result<String, StateError> {
        let last = tx.query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[]).await?;
        let (seq, prev): (i64, String) = match &last {
            Some(r) => {
                let r = Cells::new(r, "audit");
                let seq = r.get::<i64>("seq")?;
                let next = seq.checked_add(1).ok_or_else(|| StateError::Corrupt {
                    address: "audit".into(),
                    reason: format!("column audit.seq: {seq} leaves no room for another record"),
                })?;
                (next, r.get("hash")?)
            }
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
    async fn note(tx: &Client, by: &str, change: &str) -> Result<(), StateError> {
        tx.execute(
            "INSERT INTO history (serial, at, run_id, address, change) SELECT serial, $1, $2, '-', $3 FROM meta WHERE id = 1",
            &[&now(), &by, &change],
        )
        .await?;
        Ok(())
    }

    async fn put(tx: &Client, r: &ResourceRecord, serial: u64) -> Result<(), StateError> {
        let row = encode_record(r);
        tx.execute(
            "INSERT INTO resources (address, id, deposed, provider, status, attrs, deps, serial, schema_version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &row.address,
                &row.id,
                &row.deposed,
                &row.provider,
                &row.status,
                &row.attrs,
                &row.deps,
                &(serial as i64),
                &row.schema_version,
            ],
        )
        .await?;
        Ok(())
    }

    /// Claims a plan digest; `false` if it was claimed before.
    async fn claim_in(tx: &Client, digest: &str) -> Result<bool, StateError> {
        let inserted = tx
            .execute(
                "INSERT INTO applied_plans (digest, at) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING",
                &[&digest, &now()],
            )
            .await?;
        Ok(inserted == 1)
    }
}

async fn policy_in(c: &impl tokio_postgres::GenericClient) -> Result<Option<BoundPolicy>, StateError> {
    let row = c.query_opt("SELECT digest, text, source, bound_at FROM policy WHERE id = 1", &[]).await?;
    row.as_ref()
        .map(|r| {
            let r = Cells::new(r, "policy");
            Ok(BoundPolicy {
                digest: r.get("digest")?,
                text: r.get("text")?,
                source: r.get("source")?,
                bound_at: r.count("bound_at")?,
            })
        })
        .transpose()
}

#[async_trait]
impl StateStore for PostgresStore {
    async fn meta(&self) -> Result<StateMeta, StateError> {
        self.session
            .read(|c| {
                Box::pin(async move {
                    let row = c.query_one("SELECT lineage, serial, fleet FROM meta WHERE id = 1", &[]).await?;
                    let r = Cells::new(&row, "meta");
                    Ok(StateMeta { lineage: r.get("lineage")?, serial: r.count("serial")?, fleet: r.get("fleet")? })
                })
            })
            .await
    }

    async fn bind_fleet(&self, fleet: &str) -> Result<(), StateError> {
        self.session
            .write(|tx| {
                Box::pin(async move {
                    let row = tx.query_one("SELECT fleet FROM meta WHERE id = 1 FOR UPDATE", &[]).await?;
                    let found: Option<String> = Cells::new(&row, "meta").get("fleet")?;
                    match found {
                        Some(f) if f != fleet => Err(StateError::WrongFleet { expected: fleet.into(), found: f }),
                        Some(_) => Ok(()),
                        None => {
                            tx.execute("UPDATE meta SET fleet = $1 WHERE id = 1", &[&fleet]).await?;
                            Ok(())
                        }
                    }
                })
            })
            .await
    }

    async fn resources(&self) -> Result<Vec<ResourceRecord>, StateError> {
        self.session
            .read(|c| {
                Box::pin(async move {
                    let rows = c
                        .query(
                            "SELECT address, provider, id, status, attrs, deps, deposed, schema_version FROM resources \
                         ORDER BY address, deposed, id",
                            &[],
                        )
                        .await?;
                    rows.iter()
                        .map(|row| {
                            let r = Cells::new(row, "resources").named_by("address");
                            decode_record(&RowText {
                                address: r.get("address")?,
                                provider: r.get("provider")?,
                                id: r.get("id")?,
                                status: r.get("status")?,
                                attrs: r.get("attrs")?,
                                deps: r.get("deps")?,
                                deposed: r.get("deposed")?,
                                schema_version: r.get("schema_version")?,
                            })
                        })
                        .collect()
                })
            })
            .await
    }

    async fn lock(&self, holder: &str, command: &str, ttl_secs: u64) -> Result<Lease, StateError> {
        self.session
            .write(|tx| Box::pin(async move {
                tx.execute("SELECT fencing FROM meta WHERE id = 1 FOR UPDATE", &[]).await?;
                let now_s = now();
                let existing = tx
                    .query_opt("SELECT lock_id, holder, command, acquired_at, expires_at FROM lock WHERE id = 1", &[])
                    .await?;
                if let Some(row) = &existing {
                    let r = Cells::new(row, "lock");
                    if r.get::<i64>("expires_at")? > now_s {
                        let acquired = r.count("acquired_at")?;
                        return Err(StateError::Locked {
                            holder: r.get("holder")?,
                            command: r.get("command")?,
                            since: humantime::format_rfc3339_seconds(
                                std::time::UNIX_EPOCH + std::time::Duration::from_secs(acquired),
                            )
                            .to_string(),
                            lock_id: r.get("lock_id")?,
                        });
                    }
                }
                let row =
                    tx.query_one("UPDATE meta SET fencing = fencing + 1 WHERE id = 1 RETURNING fencing", &[]).await?;
                let token = Cells::new(&row, "meta").count("fencing")?;
                let lease = Lease {
                    lock_id: uuid::Uuid::new_v4().to_string(),
                    holder: holder.into(),
                    command: command.into(),
                    token,
                    acquired_at: now_s as u64,
                    expires_at: (now_s as u64) + ttl_secs,
                };
                tx.execute(
                    "INSERT INTO lock (id, lock_id, holder, command, token, acquired_at, expires_at) VALUES (1, $1, $2, $3, $4, $5, $6)
                     ON CONFLICT (id) DO UPDATE SET lock_id = EXCLUDED.lock_id, holder = EXCLUDED.holder, command = EXCLUDED.command,
                       token = EXCLUDED.token, acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at",
                    &[&lease.lock_id, &lease.holder, &lease.command, &(token as i64), &now_s, &(lease.expires_at as i64)],
                )
                .await?;
                Ok(lease)
            }))
            .await
    }

    async fn renew(&self, lease: &Lease, ttl_secs: u64) -> Result<Lease, StateError> {
        self.session
            .write(|tx| {
                Box::pin(async move {
                    Self::fenced(&tx, lease).await?;
                    let expires_at = now_secs() + ttl_secs;
                    tx.execute("UPDATE lock SET expires_at = $1 WHERE id = 1", &[&(expires_at as i64)]).await?;
                    Ok(Lease { expires_at, ..lease.clone() })
                })
            })
            .await
    }

    async fn unlock(&self, lease: &Lease) -> Result<(), StateError> {
        self.session
            .write(|tx| {
                Box::pin(async move {
                    tx.execute("DELETE FROM lock WHERE id = 1 AND token = $1", &[&(lease.token as i64)]).await?;
                    Ok(())
                })
            })
            .await
    }

    async fn force_unlock(&self, lock_id: &str, by: &str) -> Result<(), StateError> {
        self.session
            .write(|tx| {
                Box::pin(async move {
                    let removed = tx.execute("DELETE FROM lock WHERE lock_id = $1", &[&lock_id]).await?;
                    if removed == 0 {
                        return Err(StateError::NoSuchLock(lock_id.into()));
                    }
                    Self::note(&tx, by, &format!("force-unlock {lock_id}")).await
                })
            })
            .await
    }

    async fn open_intent(&self, lease: &Lease, intent: &NewIntent<'_>) -> Result<i64, StateError> {
        let provider = serde_json::to_string(intent.provider).unwrap_or_default();
        let desired = intent.desired.map(|d| serde_json::to_string(d).unwrap_or_default());
        let address = intent.address.to_string();
        let (provider, desired, address) = (&provider, &desired, &address);
        self.session
            .write(|tx| Box::pin(async move {
                Self::fenced(&tx, lease).await?;
                let row = tx
                    .query_one(
                        "INSERT INTO intents (run_id, address, op, cloud_id, provider, desired, opened_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                        &[&intent.run_id, &address, &op_text(intent.op), &intent.cloud_id, &provider, &desired, &now()],
                    )
                    .await?;
                Cells::new(&row, "intents").get("id")
            }))
            .await
    }

    async fn commit(&self, lease: &Lease, intent: i64, outcome: Outcome) -> Result<u64, StateError> {
        let outcome = &outcome;
        self.session
            .write(|tx| {
                Box::pin(async move {
                    Self::fenced(&tx, lease).await?;
                    let row = tx.query_one("SELECT run_id FROM intents WHERE id = $1", &[&intent]).await?;
                    let run_id: String = Cells::new(&row, "intents").get("run_id")?;
                    let (serial, text) = match outcome {
                        Outcome::Current(r) | Outcome::Replaced(r) => {
                            let replaced = matches!(outcome, Outcome::Replaced(_));
                            let change =
                                if replaced { format!("replace with {}", r.id) } else { format!("set {}", r.id) };
                            let address = r.address.to_string();
                            let serial = Self::bump(&tx, &run_id, &address, &change).await?;
                            if replaced {
                                tx.execute(
                                    "UPDATE resources SET deposed = TRUE WHERE address = $1 AND NOT deposed",
                                    &[&address],
                                )
                                .await?;
                            } else {
                                tx.execute("DELETE FROM resources WHERE address = $1 AND NOT deposed", &[&address])
                                    .await?;
                            }
                            Self::put(&tx, &ResourceRecord { deposed: false, ..r.clone() }, serial).await?;
                            (serial, "ok".to_string())
                        }
                        Outcome::Deleted { address, id } => {
                            let address = address.to_string();
                            let serial = Self::bump(&tx, &run_id, &address, &format!("delete {id}")).await?;
                            tx.execute("DELETE FROM resources WHERE address = $1 AND id = $2", &[&address, id]).await?;
                            (serial, "ok".to_string())
                        }
                        Outcome::Failed { message } => {
                            let row = tx.query_one("SELECT serial FROM meta WHERE id = 1", &[]).await?;
                            (Cells::new(&row, "meta").count("serial")?, format!("failed: {message}"))
                        }
                    };
                    tx.execute(
                        "UPDATE intents SET closed_at = $1, outcome = $2 WHERE id = $3",
                        &[&now(), &text, &intent],
                    )
                    .await?;
                    Ok(serial)
                })
            })
            .await
    }

    async fn open_intents(&self) -> Result<Vec<Intent>, StateError> {
        self.session
            .read(|c| Box::pin(async move {
                let rows = c
                    .query(
                        "SELECT id, run_id, address, op, cloud_id, provider, desired, opened_at FROM intents WHERE closed_at IS NULL ORDER BY id",
                        &[],
                    )
                    .await?;
                rows.iter()
                    .map(|row| {
                        let r = Cells::new(row, "intents").named_by("address");
                        decode_intent(IntentRow {
                            id: r.get("id")?,
                            run_id: r.get("run_id")?,
                            address: r.get("address")?,
                            op: r.get("op")?,
                            cloud_id: r.get("cloud_id")?,
                            provider: r.get("provider")?,
                            desired: r.get("desired")?,
                            opened_at: r.count("opened_at")?,
                        })
                    })
                    .collect()
            }))
            .await
    }

    async fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, StateError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.session
            .read(|c| {
                Box::pin(async move {
                    let rows = c
                        .query(
                            "SELECT serial, at, run_id, address, change FROM history ORDER BY seq DESC LIMIT $1",
                            &[&limit],
                        )
                        .await?;
                    let mut out = rows
                        .iter()
                        .map(|row| {
                            let r = Cells::new(row, "history");
                            Ok(HistoryEntry {
                                serial: r.count("serial")?,
                                at: r.count("at")?,
                                run_id: r.get("run_id")?,
                                address: r.get("address")?,
                                change: r.get("change")?,
                            })
                        })
                        .collect::<Result<Vec<_>, StateError>>()?;
                    out.reverse();
                    Ok(out)
                })
            })
            .await
    }

    async fn claim_plan(&self, lease: &Lease, digest: &str) -> Result<bool, StateError> {
        self.session
            .write(|tx| {
                Box::pin(async move {
                    Self::fenced(&tx, lease).await?;
                    Self::claim_in(&tx, digest).await
                })
            })
            .await
    }

    async fn is_plan_applied(&self, digest: &str) -> Result<bool, StateError> {
        self.session
            .read(|c| {
                Box::pin(async move {
                    let rows = c.query("SELECT 1 FROM applied_plans WHERE digest = $1", &[&digest]).await?;
                    Ok(!rows.is_empty())
                })
            })
            .await
    }

    async fn append_audit_with(&self, lease: &Lease, make: &RecordMaker<'_>) -> Result<String, StateError> {
        self.session
            .write(|tx| {
                Box::pin(async move {
                    Self::fenced(&tx, lease).await?;
                    Self::append_in(&tx, make).await
                })
            })
            .await
    }

    async fn audit_log(&self) -> Result<(Vec<AuditRow>, Option<String>), StateError> {
        self.session
            .read(|c| {
                Box::pin(async move {
                    let row = c.query_one("SELECT audit_head FROM meta WHERE id = 1", &[]).await?;
                    let head: Option<String> = Cells::new(&row, "meta").get("audit_head")?;
                    let rows = c.query("SELECT seq, record, prev, hash FROM audit ORDER BY seq", &[]).await?;
                    let rows = rows
                        .iter()
                        .map(|row| {
                            let r = Cells::new(row, "audit");
                            Ok(AuditRow {
                                seq: r.get("seq")?,
                                record: r.get("record")?,
                                prev: r.get("prev")?,
                                hash: r.get("hash")?,
                            })
                        })
                        .collect::<Result<_, StateError>>()?;
                    Ok((rows, head))
                })
            })
            .await
    }

    async fn rollout(&self) -> Result<RolloutRecord, StateError> {
        self.session
            .read(|c| {
                Box::pin(async move {
                    let row = c.query_opt("SELECT record FROM rollout WHERE id = 1", &[]).await?;
                    let text: Option<String> =
                        row.as_ref().map(|r| Cells::new(r, "rollout").get("record")).transpose()?;
                    Ok(text.as_deref().map(RolloutRecord::decode).transpose()?.unwrap_or_default())
                })
            })
            .await
    }

    async fn set_rollout(&self, lease: &Lease, record: &RolloutRecord, change: &str) -> Result<(), StateError> {
        self.session
            .write(|tx| {
                Box::pin(async move {
                    Self::fenced(&tx, lease).await?;
                    if record.is_empty() {
                        tx.execute("DELETE FROM rollout WHERE id = 1", &[]).await?;
                    } else {
                        let text = serde_json::to_string(record).unwrap_or_default();
                        tx.execute(
                            "INSERT INTO rollout (id, record) VALUES (1, $1) \
                             ON CONFLICT (id) DO UPDATE SET record = excluded.record",
                            &[&text],
                        )
                        .await?;
                    }
                    Self::note(&tx, "rollout", change).await?;
                    Ok(())
                })
            })
            .await
    }

    async fn bound_policy(&self) -> Result<Option<BoundPolicy>, StateError> {
        self.session.read(|c| Box::pin(async move { policy_in(&*c).await })).await
    }

    async fn bind_policy(&self, policy: &BoundPolicy) -> Result<BoundPolicy, StateError> {
        self.session
            .write(|tx| {
                Box::pin(async move {
                    // The meta row lock serializes two first applies binding different policies.
                    tx.execute("SELECT fencing FROM meta WHERE id = 1 FOR UPDATE", &[]).await?;
                    if let Some(bound) = policy_in(&*tx).await? {
                        return Ok(bound);
                    }
                    tx.execute(
                        "INSERT INTO policy (id, digest, text, source, bound_at) VALUES (1, $1, $2, $3, $4)",
                        &[&policy.digest, &policy.text, &policy.source, &(policy.bound_at as i64)],
                    )
                    .await?;
                    Self::note(&tx, "bind policy", &format!("bind policy {}", policy.digest)).await?;
                    Ok(policy.clone())
                })
            })
            .await
    }

    async fn change_policy(
        &self,
        lease: &Lease,
        claim: &str,
        from: &str,
        to: &BoundPolicy,
        make: &RecordMaker<'_>,
    ) -> Result<Option<String>, StateError> {
        self.session
            .write(|tx| {
                Box::pin(async move {
                    Self::fenced(&tx, lease).await?;
                    if !Self::claim_in(&tx, claim).await? {
                        return Ok(None);
                    }
                    let row = tx.query_opt("SELECT digest FROM policy WHERE id = 1", &[]).await?;
                    let found: Option<String> =
                        row.as_ref().map(|r| Cells::new(r, "policy").get("digest")).transpose()?;
                    if found.as_deref() != Some(from) {
                        return Err(StateError::PolicyMoved { expected: from.into(), found });
                    }
                    tx.execute(
                        "UPDATE policy SET digest = $1, text = $2, source = $3, bound_at = $4 WHERE id = 1",
                        &[&to.digest, &to.text, &to.source, &(to.bound_at as i64)],
                    )
                    .await?;
                    Self::note(&tx, "policy change", &format!("policy {from} -> {}", to.digest)).await?;
                    Ok(Some(Self::append_in(&tx, make).await?))
                })
            })
            .await
    }
}
