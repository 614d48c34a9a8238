//! ## Overview
//!
//! The PostgreSQL state's tables: made on the first connect, then brought to
//! [`schema::CURRENT`], all inside the connecting transaction.
//!
//! The base tables are the schema as it was before versions were recorded (version 1 of
//! [`schema`]); every later change is a migration there, run here in the same transaction, so a
//! fresh database and an old one go through the same steps.

use tokio_postgres::Client;

use super::cells::Cells;
use crate::state::{StateError, schema};

/// The tables at the base schema version; each statement does nothing when its table exists.
const BASE_TABLES: &str = "
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

/// Makes what is missing (the state's own schema when the URL names one, the base tables, the
/// `meta` row with a new lineage), then migrates.
pub async fn prepare(tx: &Client, schema_name: Option<&str>) -> Result<(), StateError> {
    // Two first runs racing to create the schema would collide in the catalog.
    tx.execute("SELECT pg_advisory_xact_lock(7415)", &[]).await?;
    if let Some(schema_name) = schema_name {
        // Checked to be letters, digits and '_' when the URL was read.
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema_name}")).await?;
    }
    tx.batch_execute(BASE_TABLES).await?;
    tx.execute(
        "INSERT INTO meta (id, lineage, serial) VALUES (1, $1, 0) ON CONFLICT (id) DO NOTHING",
        &[&uuid::Uuid::new_v4().to_string()],
    )
    .await?;
    migrate(tx).await
}

/// Brings the schema to [`schema::CURRENT`] inside the connecting transaction (under its
/// advisory lock), or refuses a newer one.
async fn migrate(tx: &Client) -> Result<(), StateError> {
    tx.batch_execute(schema::VERSION_TABLE).await?;
    let row = tx.query_opt("SELECT version FROM schema_version WHERE id = 1", &[]).await?;
    let found: Option<i64> = row.as_ref().map(|r| Cells::new(r, "schema_version").get("version")).transpose()?;
    let pending =
        schema::pending(found).map_err(|problem| StateError::Schema { state: "(PostgreSQL)".into(), problem })?;
    for m in pending {
        tx.batch_execute(m.postgres).await?;
    }
    if found != Some(schema::CURRENT) {
        tx.execute(
            "INSERT INTO schema_version (id, version) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET version = $1",
            &[&schema::CURRENT],
        )
        .await?;
    }
    Ok(())
}
