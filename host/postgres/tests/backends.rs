//! The PostgreSQL backends against a real throw-away PostgreSQL cluster.

use std::sync::Arc;
use std::time::Duration;

use activity_postgres::{connect, listen, PostgresKeyValue, PostgresRegistryStore};
use activity_registry::store::{ArtifactSource, RegistryStore, VersionRecord};
use activity_runtime::{ActivitySpec, ComponentDigest, KeyValueBackend, Param, Signature, WitType};
use test_support::Postgres;

fn record(bytes: &[u8], by: &str) -> VersionRecord {
    VersionRecord {
        seq: 0,
        digest: ComponentDigest::of(bytes),
        size: bytes.len() as u64,
        deployed_at_ms: 1,
        deployed_by: by.into(),
        spec: ActivitySpec::new("ValidateUser"),
        // The second version of each test comes from an OCI artifact: the column round-trips.
        source: (by == "b").then(|| ArtifactSource {
            reference: "oci://localhost:5000/team/validate-user:1.0.0".into(),
            manifest_digest: format!("sha256:{}", "0".repeat(64)),
        }),
        // So does a signature.
        signature: (by == "b").then(|| Signature {
            params: vec![Param {
                name: "user".into(),
                ty: WitType::List {
                    element: Box::new(WitType::U8),
                },
            }],
            result: Some(WitType::Bool),
        }),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_store_keeps_history_and_notifies_every_change() {
    let pg = Postgres::start().expect("postgres");
    let pool = connect(&pg.url(), 4).await.expect("connect");
    // A second connect (another host starting) finds the schema in place.
    connect(&pg.url(), 1).await.expect("connect again");
    let store = Arc::new(PostgresRegistryStore::new(pool));
    let (tx, mut changes) = tokio::sync::mpsc::channel(16);
    tokio::spawn(listen(pg.url(), tx));
    assert_eq!(
        changes.recv().await,
        Some(None),
        "first the catch-up signal"
    );

    let s = store.clone();
    let (v1, v2, blob, missing, history, active) = blocking(move || {
        s.put_blob(&ComponentDigest::of(b"one"), b"one").unwrap();
        s.put_blob(&ComponentDigest::of(b"one"), b"one").unwrap();
        let v1 = s
            .add_version("ValidateUser", record(b"one", "a"), true, None)
            .unwrap();
        let v2 = s
            .add_version("ValidateUser", record(b"two", "b"), true, None)
            .unwrap();
        let blob = s.blob(&ComponentDigest::of(b"one")).unwrap();
        let missing = s.blob(&ComponentDigest::of(b"nothing")).unwrap();
        s.set_active("ValidateUser", 1).unwrap();
        let history = s.versions("ValidateUser").unwrap();
        let active = s.active().unwrap();
        (v1, v2, blob, missing, history, active)
    })
    .await;
    assert_eq!((v1.seq, v2.seq), (1, 2));
    assert_eq!(blob.as_deref(), Some(&b"one"[..]));
    assert_eq!(missing, None);
    assert_eq!(history.0.len(), 2);
    assert_eq!(history.0[1].deployed_by, "b");
    assert_eq!(history.0[1].spec, v2.spec);
    assert_eq!(history.0[1].source, v2.source);
    assert!(history.0[1].source.is_some() && history.0[0].source.is_none());
    assert_eq!(history.0[1].signature, v2.signature);
    assert!(history.0[1].signature.is_some() && history.0[0].signature.is_none());
    assert_eq!(history.1, Some(1));
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].digest, ComponentDigest::of(b"one"));
    for _ in 0..3 {
        let got = tokio::time::timeout(Duration::from_secs(5), changes.recv()).await;
        assert_eq!(
            got.expect("a notification"),
            Some(Some("ValidateUser".into()))
        );
    }

    let s = store.clone();
    let (removed, again, after) = blocking(move || {
        let removed = s.remove("ValidateUser").unwrap();
        let again = s.remove("ValidateUser").unwrap();
        (removed, again, s.active().unwrap())
    })
    .await;
    assert!(removed && !again && after.is_empty());
    let got = tokio::time::timeout(Duration::from_secs(5), changes.recv()).await;
    assert_eq!(
        got.expect("a notification"),
        Some(Some("ValidateUser".into()))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_deploys_of_one_activity_get_distinct_versions() {
    let pg = Postgres::start().expect("postgres");
    let store = Arc::new(PostgresRegistryStore::new(
        connect(&pg.url(), 8).await.expect("connect"),
    ));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = store.clone();
        tasks.push(tokio::task::spawn_blocking(move || {
            s.add_version(
                "CreateUser",
                record(format!("v{i}").as_bytes(), "host"),
                true,
                None,
            )
            .unwrap()
            .seq
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort();
    assert_eq!(seqs, (1..=8).collect::<Vec<u64>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn key_value_stores_are_shared_and_paged() {
    let pg = Postgres::start().expect("postgres");
    let a = Arc::new(PostgresKeyValue::new(connect(&pg.url(), 2).await.unwrap()));
    let b = Arc::new(PostgresKeyValue::new(connect(&pg.url(), 2).await.unwrap()));
    let (a2, b2) = (a.clone(), b.clone());
    blocking(move || {
        a2.set("users", "user:1", b"{\"n\":1}").unwrap();
        assert_eq!(
            b2.get("users", "user:1").unwrap().as_deref(),
            Some(&b"{\"n\":1}"[..])
        );
        assert!(b2.exists("users", "user:1").unwrap());
        assert!(!b2.exists("other", "user:1").unwrap());
        b2.set("users", "user:1", b"2").unwrap();
        assert_eq!(
            a2.get("users", "user:1").unwrap().as_deref(),
            Some(&b"2"[..])
        );
        for i in 0..1500 {
            a2.set("many", &format!("k{i:05}"), b"x").unwrap();
        }
        let first = b2.list_keys("many", None).unwrap();
        assert_eq!(first.keys.len(), 1000);
        assert_eq!(first.keys[0], "k00000");
        let second = b2.list_keys("many", first.cursor).unwrap();
        assert_eq!(second.keys.len(), 500);
        assert_eq!(second.cursor, None);
        a2.delete("users", "user:1").unwrap();
        a2.delete("users", "user:1").unwrap();
        assert_eq!(b2.get("users", "user:1").unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_database_is_a_clear_error_and_recovery_needs_no_restart() {
    let mut pg = Postgres::start().expect("postgres");
    let kv = Arc::new(PostgresKeyValue::new(connect(&pg.url(), 2).await.unwrap()));
    let k = kv.clone();
    blocking(move || k.set("users", "a", b"1").unwrap()).await;
    pg.stop();
    let k = kv.clone();
    let err = blocking(move || k.get("users", "a").unwrap_err()).await;
    assert!(err.to_string().contains("PostgreSQL"), "{err}");
    pg.start_again().expect("postgres back");
    let k = kv.clone();
    let back = test_support::eventually(Duration::from_secs(60), || {
        let k = k.clone();
        async move { blocking(move || k.get("users", "a").ok().flatten()).await }
    })
    .await;
    assert_eq!(back.as_deref(), Some(&b"1"[..]));
}

#[tokio::test(flavor = "multi_thread")]
async fn rollouts_pins_and_events() {
    let pg = Postgres::start().expect("postgres");
    let store = Arc::new(PostgresRegistryStore::new(
        connect(&pg.url(), 2).await.expect("connect"),
    ));
    blocking(move || {
        test_support::store_contract::rollouts_pins_and_events(store.as_ref());
        test_support::store_contract::a_version_with_its_rollout(store.as_ref());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ledger() {
    let pg = Postgres::start().expect("postgres");
    let store = Arc::new(activity_postgres::PostgresLedger::new(
        connect(&pg.url(), 2).await.expect("connect"),
    ));
    blocking(move || test_support::store_contract::ledger(store.as_ref())).await;
}

/// Connects with `url` and answers the error, if any, as text.
async fn refusal(url: &str) -> Option<String> {
    match connect(url, 1).await {
        Ok(pool) => {
            pool.get()
                .await
                .unwrap()
                .execute("SELECT 1", &[])
                .await
                .unwrap();
            None
        }
        Err(e) => Some(e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_is_used_and_checked_as_the_urls_sslmode_says() {
    // A CA, a server certificate it issued for localhost and 127.0.0.1, and a rogue CA.
    let certs = tempfile::tempdir().unwrap();
    let made = std::process::Command::new("sh")
        .arg(test_support::repo().join("deployments/make-certs.sh"))
        .arg(certs.path())
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let file = |name: &str| certs.path().join(name).display().to_string();
    let pg = Postgres::start_tls_only(
        &certs.path().join("frontend.pem"),
        &certs.path().join("frontend.key"),
    )
    .expect("postgres with TLS");
    let base = |host: &str| format!("postgres://activity@{host}:{}/postgres", pg.port);
    let local = base("127.0.0.1");
    // Not authenticated but encrypted: the default (prefer) and require.
    for url in [local.clone(), format!("{local}?sslmode=require")] {
        assert_eq!(refusal(&url).await, None, "{url}");
    }
    // Checked against the CA: the chain (verify-ca, or require with a root), and the name.
    let ca = file("ca.pem");
    for mode in ["verify-ca", "verify-full", "require"] {
        let url = format!("{local}?sslmode={mode}&sslrootcert={ca}");
        assert_eq!(refusal(&url).await, None, "{url}");
    }
    // Refused: plain text, a server the rogue CA did not issue, a name the certificate lacks.
    let plain = refusal(&format!("{local}?sslmode=disable"))
        .await
        .expect("plain text is refused");
    assert!(plain.contains("no encryption"), "{plain}");
    let rogue = file("rogue-ca.pem");
    for mode in ["verify-ca", "verify-full"] {
        let url = format!("{local}?sslmode={mode}&sslrootcert={rogue}");
        let e = refusal(&url).await.expect("a rogue CA is refused");
        assert!(e.contains("certificate"), "{e}");
    }
    let other_name = format!(
        "{}?hostaddr=127.0.0.1&sslrootcert={ca}",
        base("db.elsewhere.example")
    );
    let e = refusal(&format!("{other_name}&sslmode=verify-full"))
        .await
        .expect("a certificate for another name is refused");
    assert!(e.contains("certificate"), "{e}");
    assert_eq!(
        refusal(&format!("{other_name}&sslmode=verify-ca")).await,
        None,
        "verify-ca does not check the name"
    );

    // The registry's notifications listen over the same TLS.
    let (tx, mut changes) = tokio::sync::mpsc::channel(4);
    tokio::spawn(listen(
        format!("{local}?sslmode=verify-full&sslrootcert={ca}"),
        tx,
    ));
    let first = tokio::time::timeout(Duration::from_secs(30), changes.recv()).await;
    assert_eq!(
        first.ok().flatten(),
        Some(None),
        "the catch-up signal over TLS"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_statement_stuck_behind_a_lock_is_cancelled_with_the_servers_reason() {
    let pg = Postgres::start().expect("postgres");
    let pool = activity_postgres::connect_with(&pg.url(), 2, Duration::from_millis(500))
        .await
        .expect("connect");
    let store = Arc::new(PostgresRegistryStore::new(pool));
    // Another session holds the table the store reads, and does not let go.
    let (holder, connection) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    holder
        .batch_execute("BEGIN; LOCK TABLE registry_active IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let s = store.clone();
    let answer = tokio::time::timeout(Duration::from_secs(30), blocking(move || s.active()))
        .await
        .expect("the statement is cancelled, not left waiting");
    let e = answer.expect_err("a locked table").to_string();
    assert!(
        e.contains("lock timeout") || e.contains("statement timeout"),
        "{e}"
    );
    holder.batch_execute("ROLLBACK").await.unwrap();
    assert!(blocking(move || store.active()).await.unwrap().is_empty());
}
