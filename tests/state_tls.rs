//! The PostgreSQL state backend's connection: TLS as `sslmode` says, checked on the server's
//! side (`pg_stat_ssl`); coming back after `pg_terminate_backend`, without applying a write
//! twice or by halves; and rows with NULLs or wrong types reported, not panicked on.
//!
//! Against the local server (127.0.0.1:5432, trust auth, database `test`), whose TLS certificate
//! is Debian's self-signed "snakeoil" one, issued to `localhost`.

use std::sync::Arc;
use std::time::Duration;

use tessera::state::{IntentOp, NewIntent, Outcome, PostgresStore, ResourceRecord, StateError, StateStore};
use tessera_provider_api::{Address, ProviderRef};

const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
/// Public roots only: the snakeoil certificate is not among them.
const PUBLIC_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A state URL for `host`, in a schema of its own, with an application name to find its
/// backend by, and `extra` query parameters. Returns the URL, the schema and the name.
fn state_url(host: &str, extra: &str) -> (String, String, String) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (schema, app) = (format!("t_{id}"), format!("tessera_{id}"));
    let sep = if extra.is_empty() { "" } else { "&" };
    (format!("postgres://postgres@{host}:5432/test?schema={schema}&application_name={app}{sep}{extra}"), schema, app)
}

/// A plain-text connection of the test's own, to look at the server's side.
async fn observer() -> tokio_postgres::Client {
    let (client, conn) =
        tokio_postgres::connect("postgres://postgres@127.0.0.1:5432/test?sslmode=disable", tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(conn);
    client
}

/// Whether the backends serving `app` use TLS, as the server sees them.
async fn backend_ssl(app: &str) -> Vec<bool> {
    let rows = observer()
        .await
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1",
            &[&app],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

async fn backend_pids(o: &tokio_postgres::Client, app: &str) -> Vec<i32> {
    let rows = o.query("SELECT pid FROM pg_stat_activity WHERE application_name = $1", &[&app]).await.unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

/// Terminates the one backend serving `app` (waiting out one that is still exiting).
async fn terminate(o: &tokio_postgres::Client, app: &str) -> i32 {
    let pids = loop {
        let pids = backend_pids(o, app).await;
        if pids.len() == 1 {
            break pids;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let killed: bool = o.query_one("SELECT pg_terminate_backend($1)", &[&pids[0]]).await.unwrap().get(0);
    assert!(killed);
    pids[0]
}

/// The error of connecting to `url`, with its causes, as the CLI's report prints them.
async fn connect_err(url: &str) -> String {
    match PostgresStore::connect(url).await {
        Ok(_) => panic!("{url} connected"),
        Err(e) => with_causes(&e),
    }
}

fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// Connects a store to `host` with `extra` parameters; whether the server sees TLS on it.
async fn store_backend_ssl(host: &str, extra: &str) -> Vec<bool> {
    let (url, _, app) = state_url(host, extra);
    let store = PostgresStore::connect(&url).await.unwrap();
    store.meta().await.unwrap();
    backend_ssl(&app).await
}

#[tokio::test]
async fn sslmode_require_connects_over_tls() {
    assert_eq!(store_backend_ssl("127.0.0.1", "sslmode=require").await, [true]);
}

#[tokio::test]
async fn sslmode_disable_connects_in_plain_text() {
    assert_eq!(store_backend_ssl("127.0.0.1", "sslmode=disable").await, [false]);
}

#[tokio::test]
async fn without_sslmode_tls_is_preferred() {
    assert_eq!(store_backend_ssl("127.0.0.1", "").await, [true]);
}

#[tokio::test]
async fn verify_full_refuses_the_self_signed_certificate_without_its_ca_file() {
    // `localhost` is the name in the certificate: only the chain can be what is refused.
    let (url, _, app) = state_url("localhost", "sslmode=verify-full");
    let err = connect_err(&url).await;
    assert!(err.contains("certificate") && err.contains("UnknownIssuer"), "{err}");
    assert!(backend_ssl(&app).await.is_empty(), "no session was opened");
}

#[tokio::test]
async fn verify_full_accepts_the_certificate_with_its_ca_file_when_the_host_name_matches() {
    let ssl = store_backend_ssl("localhost", &format!("sslmode=verify-full&sslrootcert={SNAKEOIL}")).await;
    assert_eq!(ssl, [true]);
}

#[tokio::test]
async fn verify_full_checks_the_host_name_and_verify_ca_does_not() {
    // The certificate names `localhost`, not 127.0.0.1.
    let (url, _, _) = state_url("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={SNAKEOIL}"));
    let err = connect_err(&url).await;
    assert!(err.contains("not valid for name \"127.0.0.1\""), "{err}");

    let ssl = store_backend_ssl("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={SNAKEOIL}")).await;
    assert_eq!(ssl, [true]);
}

#[tokio::test]
async fn a_root_file_that_does_not_sign_the_certificate_is_refused_even_by_require() {
    for mode in ["verify-ca", "require"] {
        let (url, _, _) = state_url("127.0.0.1", &format!("sslmode={mode}&sslrootcert={PUBLIC_ROOTS}"));
        let err = connect_err(&url).await;
        assert!(err.contains("UnknownIssuer"), "{mode}: {err}");
    }
}

#[tokio::test]
async fn an_unknown_sslmode_is_refused_by_name() {
    let (url, _, _) = state_url("127.0.0.1", "sslmode=verify_full");
    let err = tessera::state::open(&url).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("sslmode=verify_full") && err.contains("verify-full"), "{err}");
}

#[tokio::test]
async fn a_terminated_connection_is_established_again_by_itself() {
    let (url, _, app) = state_url("127.0.0.1", "sslmode=require");
    let store = PostgresStore::connect(&url).await.unwrap();
    let o = observer().await;
    let first = terminate(&o, &app).await;
    // A read right after the kill.
    assert_eq!(store.meta().await.unwrap().fleet, None);
    let second = terminate(&o, &app).await;
    assert_ne!(first, second, "a new backend served the read");
    // A write right after the kill.
    store.bind_fleet("core").await.unwrap();
    assert_eq!(store.meta().await.unwrap().fleet.as_deref(), Some("core"));
    assert_eq!(backend_ssl(&app).await, [true], "the new connection is encrypted too");
}

#[tokio::test]
async fn a_write_whose_connection_is_killed_mid_transaction_runs_again_once_and_whole() {
    let (url, schema, app) = state_url("127.0.0.1", "sslmode=require");
    let store = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let mut o = observer().await;
    // Hold the writers' row lock, so that the store's `lock` stops inside its transaction.
    let blocker = o.transaction().await.unwrap();
    blocker.execute(&format!("SELECT 1 FROM {schema}.meta WHERE id = 1 FOR UPDATE"), &[]).await.unwrap();
    let taking = tokio::spawn({
        let store = store.clone();
        async move { store.lock("me", "apply", 60).await }
    });
    let watcher = observer().await;
    // The backend serving `app` that waits for a row lock, other than `not`.
    let waiting = async |app: &str, not: i32| loop {
        let rows = watcher
            .query(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock' AND pid <> $2",
                &[&app, &not],
            )
            .await
            .unwrap();
        if let Some(r) = rows.first() {
            return r.get::<_, i32>(0);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let first = waiting(&app, 0).await;
    let killed: bool = watcher.query_one("SELECT pg_terminate_backend($1)", &[&first]).await.unwrap().get(0);
    assert!(killed);
    // The store runs the transaction again on a new connection (another backend), and waits for
    // the row again.
    waiting(&app, first).await;
    blocker.rollback().await.unwrap();
    let lease = taking.await.unwrap().unwrap();
    let held = lease.lock_id.clone();
    // The killed attempt left nothing: one fencing bump, one lock row, held by this lease.
    assert_eq!(lease.token, 1);
    let row = o.query_one(&format!("SELECT fencing FROM {schema}.meta"), &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
    let rows = o.query(&format!("SELECT lock_id FROM {schema}.lock"), &[]).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>(), [held]);
    store.unlock(&lease).await.unwrap();
}

fn record(addr: &str, id: &str) -> ResourceRecord {
    ResourceRecord {
        address: addr.parse().unwrap(),
        provider: ProviderRef::new("sim", "eu-west-1"),
        id: id.into(),
        status: "ACTIVE".into(),
        attrs: Default::default(),
        deps: vec![],
        deposed: false,
        schema_version: 1,
    }
}

fn corrupt(err: StateError) -> (String, String) {
    match err {
        StateError::Corrupt { address, reason } => (address, reason),
        other => panic!("expected Corrupt, got {other}"),
    }
}

#[tokio::test]
async fn nulls_wrong_types_and_negative_counts_in_rows_are_errors_naming_the_column() {
    let (url, schema, _) = state_url("127.0.0.1", "");
    let store = PostgresStore::connect(&url).await.unwrap();
    let lease = store.lock("me", "apply", 60).await.unwrap();
    let a: Address = "p/sim.cluster/main".parse().unwrap();
    let provider = ProviderRef::new("sim", "eu-west-1");
    let new = NewIntent {
        run_id: "run",
        address: &a,
        op: IntentOp::Create,
        cloud_id: None,
        provider: &provider,
        desired: None,
    };
    let intent = store.open_intent(&lease, &new).await.unwrap();
    store.commit(&lease, intent, Outcome::Current(record("p/sim.cluster/main", "c-1"))).await.unwrap();
    let o = observer().await;
    let sql = |s: &str| s.replace("$S", &schema);

    o.batch_execute(&sql(
        "ALTER TABLE $S.resources ALTER COLUMN status DROP NOT NULL; UPDATE $S.resources SET status = NULL",
    ))
    .await
    .unwrap();
    let (row, reason) = corrupt(store.resources().await.unwrap_err());
    assert_eq!(row, "p/sim.cluster/main");
    assert!(reason.contains("resources.status") && reason.contains("NULL"), "{reason}");

    o.batch_execute(&sql("ALTER TABLE $S.meta ALTER COLUMN lineage DROP NOT NULL; UPDATE $S.meta SET lineage = NULL"))
        .await
        .unwrap();
    let (_, reason) = corrupt(store.meta().await.unwrap_err());
    assert!(reason.contains("meta.lineage") && reason.contains("NULL"), "{reason}");

    o.batch_execute(&sql("UPDATE $S.meta SET lineage = 'l'; ALTER TABLE $S.meta ALTER COLUMN serial TYPE TEXT"))
        .await
        .unwrap();
    let (_, reason) = corrupt(store.meta().await.unwrap_err());
    assert!(reason.contains("meta.serial") && reason.contains("text"), "{reason}");

    o.batch_execute(&sql("UPDATE $S.history SET at = -5")).await.unwrap();
    let (_, reason) = corrupt(store.history(10).await.unwrap_err());
    assert!(reason.contains("history.at") && reason.contains("negative"), "{reason}");

    // A write that meets a corrupt value after its first change fails whole: `lock` bumps the
    // fencing token, then finds it negative; the bump is rolled back.
    store.unlock(&lease).await.unwrap();
    o.batch_execute(&sql("UPDATE $S.meta SET fencing = -5")).await.unwrap();
    let (_, reason) = corrupt(store.lock("me", "apply", 60).await.unwrap_err());
    assert!(reason.contains("meta.fencing") && reason.contains("negative"), "{reason}");
    let row = o.query_one(&sql("SELECT fencing FROM $S.meta"), &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), -5, "the failed lock changed nothing");
    assert!(o.query(&sql("SELECT 1 FROM $S.lock"), &[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_server_that_cannot_be_reached_is_a_retryable_unavailable_error() {
    let err = match tessera::state::PostgresStore::connect("postgres://postgres@127.0.0.1:1/test?sslmode=disable").await
    {
        Ok(_) => panic!("nothing listens on port 1"),
        Err(e) => e,
    };
    assert!(matches!(err, tessera::state::StateError::Unavailable { .. }), "{err}");
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("refused"), "the cause is in the message: {err}");
}
