//! The state stores: versions, leases with fencing, the intent journal, history. Every behaviour
//! runs against both backends, SQLite and PostgreSQL (127.0.0.1:5432, database `test`, each test
//! in a schema of its own).

mod common;

use std::sync::Arc;

use tessera::state::{
    IntentOp, NewIntent, Outcome, PostgresStore, ResourceRecord, SqliteStore, StateError, StateStore,
};
use tessera_provider_api::{Address, ProviderRef};

fn provider() -> ProviderRef {
    ProviderRef { profile: Some("eks".into()), ..ProviderRef::new("sim", "eu-west-1") }
}

fn new_intent<'a>(run_id: &'a str, address: &'a Address, op: IntentOp, cloud_id: Option<&'a str>) -> NewIntent<'a> {
    static PROVIDER: std::sync::OnceLock<ProviderRef> = std::sync::OnceLock::new();
    NewIntent { run_id, address, op, cloud_id, provider: PROVIDER.get_or_init(provider), desired: None }
}

fn record(addr: &str, id: &str) -> ResourceRecord {
    ResourceRecord {
        address: addr.parse().unwrap(),
        provider: provider(),
        id: id.into(),
        status: "ACTIVE".into(),
        attrs: Default::default(),
        deps: vec![],
        deposed: false,
        schema_version: 1,
    }
}

async fn each_commit_bumps_the_serial_and_closes_its_intent(s: Arc<dyn StateStore>) {
    let lease = s.lock("me", "apply", 60).await.unwrap();
    let a: Address = "p/sim.cluster/main".parse().unwrap();
    let intent = s.open_intent(&lease, &new_intent("run", &a, IntentOp::Create, None)).await.unwrap();
    assert_eq!(s.open_intents().await.unwrap().len(), 1, "open until the outcome is recorded");
    assert_eq!(s.commit(&lease, intent, Outcome::Current(record("p/sim.cluster/main", "c-1"))).await.unwrap(), 1);
    assert!(s.open_intents().await.unwrap().is_empty());
    assert_eq!(s.resources().await.unwrap().len(), 1);

    // A replacement deposes the old object; deleting it removes only that one.
    let intent = s.open_intent(&lease, &new_intent("run", &a, IntentOp::Replace, Some("c-1"))).await.unwrap();
    s.commit(&lease, intent, Outcome::Replaced(record("p/sim.cluster/main", "c-2"))).await.unwrap();
    let rows = s.resources().await.unwrap();
    assert_eq!(rows.iter().map(|r| (r.id.as_str(), r.deposed)).collect::<Vec<_>>(), [("c-2", false), ("c-1", true)]);
    let intent = s.open_intent(&lease, &new_intent("run", &a, IntentOp::Delete, Some("c-1"))).await.unwrap();
    let serial = s.commit(&lease, intent, Outcome::Deleted { address: a.clone(), id: "c-1".into() }).await.unwrap();
    assert_eq!(serial, 3);
    assert_eq!(s.resources().await.unwrap().len(), 1);

    // A failure closes the intent without a new version.
    let intent = s.open_intent(&lease, &new_intent("run", &a, IntentOp::Update, Some("c-2"))).await.unwrap();
    assert_eq!(s.commit(&lease, intent, Outcome::Failed { message: "boom".into() }).await.unwrap(), 3);
    assert_eq!(s.history(10).await.unwrap().len(), 3);
}

async fn a_held_lease_refuses_a_second_holder_and_names_the_first(s: Arc<dyn StateStore>) {
    let first = s.lock("alice@laptop", "apply specs/x.yaml", 60).await.unwrap();
    let err = s.lock("bob@ci", "apply", 60).await.unwrap_err();
    let StateError::Locked { holder, command, lock_id, .. } = err else { panic!("expected Locked") };
    assert_eq!(
        (holder.as_str(), command.as_str(), lock_id.as_str()),
        ("alice@laptop", "apply specs/x.yaml", first.lock_id.as_str())
    );
    s.unlock(&first).await.unwrap();
    assert!(s.lock("bob@ci", "apply", 60).await.is_ok());
}

async fn an_expired_lease_can_be_taken_over_and_the_old_holder_is_fenced_off(s: Arc<dyn StateStore>) {
    let stale = s.lock("crashed", "apply", 0).await.unwrap();
    let fresh = s.lock("next", "apply", 60).await.unwrap();
    assert!(fresh.token > stale.token, "fencing tokens only increase");
    let a: Address = "p/sim.cluster/main".parse().unwrap();
    let err = s.open_intent(&stale, &new_intent("old-run", &a, IntentOp::Create, None)).await.unwrap_err();
    assert!(matches!(err, StateError::Fenced { .. }), "{err}");
    assert!(matches!(s.renew(&stale, 60).await, Err(StateError::Fenced { .. })));
    let intent = s.open_intent(&fresh, &new_intent("run", &a, IntentOp::Create, None)).await.unwrap();
    // The stale holder cannot close the new holder's intent either.
    let err = s.commit(&stale, intent, Outcome::Current(record("p/sim.cluster/main", "x"))).await.unwrap_err();
    assert!(matches!(err, StateError::Fenced { .. }));
    assert!(s.resources().await.unwrap().is_empty());
}

async fn force_unlock_is_recorded_in_history(s: Arc<dyn StateStore>) {
    let lease = s.lock("dead", "apply", 600).await.unwrap();
    assert!(matches!(s.force_unlock("nope", "me").await, Err(StateError::NoSuchLock(_))));
    s.force_unlock(&lease.lock_id, "state unlock").await.unwrap();
    let history = s.history(10).await.unwrap();
    assert!(history.iter().any(|h| h.change.contains(&lease.lock_id)), "{history:?}");
    assert!(s.lock("me", "apply", 60).await.is_ok());
}

async fn a_state_belongs_to_one_fleet(s: Arc<dyn StateStore>) {
    s.bind_fleet("core").await.unwrap();
    s.bind_fleet("core").await.unwrap();
    assert!(matches!(s.bind_fleet("other").await, Err(StateError::WrongFleet { .. })));
}

/// Two runs on one state: exactly one proceeds; the other is refused, naming the holder.
async fn concurrent_applies_on_one_state(first: Arc<dyn StateStore>, second: Arc<dyn StateStore>) {
    use common::{Harness, load, three_clouds};
    let (a, b) = (Harness::with_shared(first), Harness::with_shared(second));
    let fleet = load(&three_clouds());
    let (pa, pb) = (a.plan(&fleet).await, b.plan(&fleet).await);
    let (ra, rb) = tokio::join!(a.try_apply(&pa, &fleet), b.try_apply(&pb, &fleet));
    let outcomes = [ra.is_ok(), rb.is_ok()];
    assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1, "exactly one proceeds: {outcomes:?}");
    let err = ra.err().or(rb.err()).unwrap().to_string();
    assert!(err.contains("state is locked by"), "{err}");
}

/// A rollout's halt: recorded and cleared under the lease (a fenced-off holder writes nothing),
/// kept across reads, noted in history, and the serial left alone.
async fn a_rollout_halt_is_recorded_fenced_and_cleared(s: Arc<dyn StateStore>) {
    use tessera::state::RolloutHalt;
    assert_eq!(s.rollout_halt().await.unwrap(), None);
    let halt = RolloutHalt {
        wave: 2,
        placements: vec!["aws-a".into(), "aws-b".into()],
        reason: "placement `aws-a` failed its gate: nodesReady: 1 not Ready (n1)".into(),
        spec_digest: "d".into(),
        run_id: "run-1".into(),
        at: 1,
        soak_until_ms: None,
        soak_owed: false,
    };
    let old = s.lock("old", "apply", 0).await.unwrap();
    let lease = s.lock("new", "apply", 60).await.unwrap();
    let serial = s.meta().await.unwrap().serial;
    assert!(matches!(s.set_rollout_halt(&old, Some(&halt)).await, Err(StateError::Fenced { .. })));
    assert_eq!(s.rollout_halt().await.unwrap(), None, "a fenced-off run records nothing");
    s.set_rollout_halt(&lease, Some(&halt)).await.unwrap();
    assert_eq!(s.rollout_halt().await.unwrap(), Some(halt.clone()));
    let again = RolloutHalt { wave: 3, ..halt };
    s.set_rollout_halt(&lease, Some(&again)).await.unwrap();
    assert_eq!(s.rollout_halt().await.unwrap(), Some(again));
    assert_eq!(s.meta().await.unwrap().serial, serial, "no resource changed");
    s.set_rollout_halt(&lease, None).await.unwrap();
    assert_eq!(s.rollout_halt().await.unwrap(), None);
    let history = s.history(10).await.unwrap();
    assert!(history.iter().any(|h| h.change.contains("rollout halted at wave 3")), "{history:?}");
    assert!(history.iter().any(|h| h.change.contains("went past its halt")), "{history:?}");
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(super::sqlite()).await
            }
            #[tokio::test]
            async fn postgres() {
                super::$name(super::postgres().await).await
            }
        }
    )*};
}

on_both_backends!(
    each_commit_bumps_the_serial_and_closes_its_intent,
    a_held_lease_refuses_a_second_holder_and_names_the_first,
    an_expired_lease_can_be_taken_over_and_the_old_holder_is_fenced_off,
    force_unlock_is_recorded_in_history,
    a_state_belongs_to_one_fleet,
    a_rollout_halt_is_recorded_fenced_and_cleared,
);

mod concurrent_applies {
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let open =
            || Arc::new(tessera::state::SqliteStore::open(&path).unwrap()) as Arc<dyn tessera::state::StateStore>;
        super::concurrent_applies_on_one_state(open(), open()).await
    }

    #[tokio::test(start_paused = true)]
    async fn postgres() {
        let url = super::pg_url();
        let a = Arc::new(tessera::state::PostgresStore::connect(&url).await.unwrap());
        let b = Arc::new(tessera::state::PostgresStore::connect(&url).await.unwrap());
        super::concurrent_applies_on_one_state(a, b).await
    }
}

fn sqlite() -> Arc<dyn StateStore> {
    Arc::new(SqliteStore::in_memory().unwrap())
}

/// A fresh schema in the local PostgreSQL: `.ci/run` starts the server if it is down.
fn pg_url() -> String {
    let base =
        std::env::var("TESSERA_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    format!("{base}?schema=t_{}", uuid::Uuid::new_v4().simple())
}

async fn postgres() -> Arc<dyn StateStore> {
    Arc::new(PostgresStore::connect(&pg_url()).await.expect("PostgreSQL at 127.0.0.1:5432 (scripts/test starts it)"))
}

#[tokio::test]
async fn postgres_state_survives_reconnecting() {
    let url = pg_url();
    let lineage = {
        let s = PostgresStore::connect(&url).await.unwrap();
        s.bind_fleet("core").await.unwrap();
        s.meta().await.unwrap().lineage
    };
    let s = tessera::state::open(&url).await.unwrap();
    assert_eq!(s.meta().await.unwrap().lineage, lineage);
    assert_eq!(s.meta().await.unwrap().fleet.as_deref(), Some("core"));
}

#[tokio::test]
async fn state_survives_reopening_and_keeps_its_lineage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/state.db");
    let lineage = {
        let s = SqliteStore::open(&path).unwrap();
        s.bind_fleet("core").await.unwrap();
        s.meta().await.unwrap().lineage
    };
    let s = tessera::state::open(&format!("sqlite://{}", path.display())).await.unwrap();
    let meta = s.meta().await.unwrap();
    assert_eq!((meta.lineage, meta.fleet.as_deref()), (lineage, Some("core")));
    assert!(matches!(s.bind_fleet("other").await, Err(StateError::WrongFleet { .. })));
    assert!(matches!(tessera::state::open("mysql://x/y").await, Err(StateError::Url(_))));
}

#[tokio::test]
async fn a_corrupt_rollout_halt_is_reported_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("INSERT INTO rollout (id, record) VALUES (1, '{\"wave\": \"two\"}')", []).unwrap();
    drop(conn);
    let s = SqliteStore::open(&path).unwrap();
    let err = s.rollout_halt().await.unwrap_err();
    assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("rollout"), "{err}");
}

#[tokio::test]
async fn corrupt_rows_are_reported_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let s = SqliteStore::open(&path).unwrap();
    let lease = s.lock("me", "apply", 60).await.unwrap();
    let a: Address = "p/sim.cluster/main".parse().unwrap();
    let intent = s.open_intent(&lease, &new_intent("run", &a, IntentOp::Create, None)).await.unwrap();
    s.commit(&lease, intent, Outcome::Current(record("p/sim.cluster/main", "c-1"))).await.unwrap();
    drop(s);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE resources SET attrs = '{broken'", []).unwrap();
    let s = SqliteStore::open(&path).unwrap();
    let err = s.resources().await.unwrap_err();
    assert!(matches!(&err, StateError::Corrupt { address, .. } if address == "p/sim.cluster/main"), "{err}");
}

#[tokio::test]
async fn postgres_corrupt_rows_are_reported_not_panicked_on() {
    let url = pg_url();
    let s = PostgresStore::connect(&url).await.unwrap();
    let lease = s.lock("me", "apply", 60).await.unwrap();
    let a: Address = "p/sim.cluster/main".parse().unwrap();
    let intent = s.open_intent(&lease, &new_intent("run", &a, IntentOp::Create, None)).await.unwrap();
    s.commit(&lease, intent, Outcome::Current(record("p/sim.cluster/main", "c-1"))).await.unwrap();
    let (base, query) = url.split_once('?').unwrap();
    let schema = query.trim_start_matches("schema=");
    let (client, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client.batch_execute(&format!("UPDATE {schema}.resources SET attrs = '{{broken'")).await.unwrap();
    let err = s.resources().await.unwrap_err();
    assert!(matches!(&err, StateError::Corrupt { address, .. } if address == "p/sim.cluster/main"), "{err}");
}

#[test]
fn a_damaged_state_file_is_refused_never_reinitialised() {
    use tessera::state::{SqliteStore, StateError};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    drop(SqliteStore::open(&path).unwrap());
    assert!(SqliteStore::open(&path).is_ok(), "a whole state opens again");

    let refused = |path: &std::path::Path, what: &str| match SqliteStore::open(path) {
        Err(StateError::Damaged { problem, .. }) => assert!(problem.contains(what), "{problem}"),
        Err(e) => panic!("{what}: {e}"),
        Ok(_) => panic!("{what}: a damaged state was opened"),
    };
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("DELETE FROM meta", []).unwrap();
    drop(conn);
    refused(&path, "no `meta` row");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("DROP TABLE resources").unwrap();
    drop(conn);
    refused(&path, "no `resources` table");
    std::fs::write(&path, b"").unwrap();
    refused(&path, "empty");
    std::fs::write(&path, b"SQLite format 3\0 truncated").unwrap();
    refused(&path, "not a readable SQLite database");
    assert_eq!(std::fs::read(&path).unwrap(), b"SQLite format 3\0 truncated", "the file is left as it was");
}

/// Both backends record their schema version; a state written by a newer Tessera is refused
/// with what to do, and one written before versions were recorded is taken as the base schema.
#[tokio::test]
async fn schema_versions_are_recorded_and_a_newer_state_is_refused() {
    use tessera::state::schema::CURRENT;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    drop(SqliteStore::open(&path).unwrap());
    let version = |p: &std::path::Path| -> i64 {
        rusqlite::Connection::open(p)
            .unwrap()
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(version(&path), CURRENT);
    // Unversioned (as every state before versions were recorded): opened and stamped.
    // (and the columns later versions added).
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TABLE schema_version; ALTER TABLE resources DROP COLUMN schema_version")
        .unwrap();
    drop(SqliteStore::open(&path).unwrap());
    assert_eq!(version(&path), CURRENT);
    // Newer: refused, and left as it was.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE schema_version SET version = ?1", [CURRENT + 1])
        .unwrap();
    let err = SqliteStore::open(&path).err().expect("refused");
    assert!(matches!(&err, StateError::Schema { .. }), "{err}");
    assert!(err.to_string().contains("written by a newer Tessera"), "{err}");
    assert_eq!(version(&path), CURRENT + 1, "nothing was changed");

    let url = pg_url();
    drop(PostgresStore::connect(&url).await.unwrap());
    let schema = url.rsplit("schema=").next().unwrap().to_string();
    let (client, conn) =
        tokio_postgres::connect("host=127.0.0.1 user=postgres dbname=test", tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let found: i64 =
        client.query_one(&format!("SELECT version FROM {schema}.schema_version"), &[]).await.unwrap().get(0);
    assert_eq!(found, CURRENT);
    client.execute(&format!("UPDATE {schema}.schema_version SET version = {}", CURRENT + 1), &[]).await.unwrap();
    let err = PostgresStore::connect(&url).await.err().expect("refused");
    assert!(err.to_string().contains("written by a newer Tessera"), "{err}");
}
