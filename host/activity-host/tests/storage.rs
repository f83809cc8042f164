//! Where a host keeps things: the registry and the key-value stores each in the backend the
//! configuration names (`registry.backend`, `registry.keyvalue_backend`), against a real
//! throw-away PostgreSQL cluster and SQLite files.

use activity_host::config::Config;
use activity_host::host::Host;
use activity_registry::StorageBackend;
use activity_runtime::KeyValueBackend;
use activity_sqlite::SqliteKeyValue;
use test_support::Postgres;

fn config(pg: &Postgres, data: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.data_dir.0 = data.to_path_buf();
    config.registry.postgres_url = Some(pg.url());
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn the_key_value_stores_follow_their_own_key_and_default_to_the_registry() {
    let pg = tokio::task::spawn_blocking(Postgres::start)
        .await
        .unwrap()
        .expect("postgres");

    // Registry in PostgreSQL, key-value stores in SQLite: the users store is the local file.
    let data = tempfile::tempdir().unwrap();
    let mut split = config(&pg, data.path());
    split.registry.backend = StorageBackend::Postgres;
    split.registry.keyvalue_backend = Some(StorageBackend::Sqlite);
    let store_path = split.store_path();
    let host = Host::open(split).await.expect("host");
    let bytes = test_components::read(test_components::VALIDATE_USER);
    let deployed = host
        .registry
        .deploy("ValidateUser", bytes, Default::default())
        .await
        .expect("deploy into PostgreSQL");
    assert!(deployed.changed);
    let kv = host.store.clone();
    tokio::task::spawn_blocking(move || kv.set("users", "split", b"local"))
        .await
        .unwrap()
        .unwrap();
    drop(host);
    let local = SqliteKeyValue::open(&store_path).unwrap();
    assert_eq!(
        local.get("users", "split").unwrap().as_deref(),
        Some(&b"local"[..])
    );
    assert!(
        !data.path().join("registry.sqlite").exists(),
        "the registry is not in SQLite"
    );

    // A second host with the default (follow the registry): its stores are in PostgreSQL,
    // so it does not see the first host's local key, and sees the deployed version.
    let other = tempfile::tempdir().unwrap();
    let mut follow = config(&pg, other.path());
    follow.registry.backend = StorageBackend::Postgres;
    let host = Host::open(follow).await.expect("host");
    let kv = host.store.clone();
    let seen = tokio::task::spawn_blocking(move || {
        let before = kv.get("users", "split").unwrap();
        kv.set("users", "shared", b"pg").unwrap();
        (before, kv.get("users", "shared").unwrap())
    })
    .await
    .unwrap();
    assert_eq!(seen, (None, Some(b"pg".to_vec())));
    assert!(
        !other.path().join("store.sqlite").exists(),
        "{:?}",
        other.path()
    );
    let listed = host.registry.list().await.unwrap();
    assert!(
        listed.iter().any(|a| a.name == "ValidateUser"),
        "{listed:?}"
    );
}

/// `runtime.compiled_cache_dir` holds the compiled components, one file per digest under a
/// directory per engine, outside the data directory.
#[tokio::test(flavor = "multi_thread")]
async fn compiled_components_go_to_the_configured_cache_directory() {
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().to_path_buf();
    let session = crate::support::Session::start_with(|c| {
        c.runtime.compiled_cache_dir = Some(dir.clone());
    })
    .await;
    let files: Vec<String> = std::fs::read_dir(cache.path())
        .unwrap()
        .flat_map(|engine| std::fs::read_dir(engine.unwrap().path()).unwrap())
        .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for name in ["ValidateUser", "CreateUser", "SendNotification"] {
        let shown = crate::support::get_json(
            &session.http,
            format!("{}/api/v1/activities/{name}", session.base),
        )
        .await;
        let digest = shown["versions"][0]["digest"].as_str().unwrap().to_string();
        let hex = digest.trim_start_matches("sha256:");
        assert!(
            files.contains(&format!("{hex}.cwasm")),
            "{name} ({digest}) not in the cache: {files:?}"
        );
    }
    let data_cache = session.host.data.path().join("compiled");
    assert!(!data_cache.exists(), "{}", data_cache.display());
}
