//! One host of a fleet on a PostgreSQL registry. Joining: it serves at once and loads what
//! another host compiled (sealed with the fleet's secrets key) instead of compiling it again;
//! an artifact that does not open with its key (another key, altered) is compiled instead.
//! A store outage: a pinned run never switches version; a call whose version cannot be known
//! is retried, not run on the active version.

use std::sync::Arc;

use activity_postgres::{connect, PostgresAccess, PostgresRegistryStore};
use activity_registry::access::SecretsKey;
use activity_registry::rollout::RolloutPolicy;
use activity_registry::{DeployRequest, Registry};
use activity_runtime::{ActivityCatalog, CallContext, CallKey, CompiledFrom, Runtime, Unresolved};
use activity_runtime::{ComponentDigest, RuntimeConfig};
use serde_json::json;
use test_support::Postgres;

const TYPES: [&str; 3] = ["Joining0", "Joining1", "Joining2"];

/// One host of the fleet: its own compiled directory, the shared store, `key` (hex) if any.
async fn host(pg: &Postgres, key: Option<&str>) -> (Registry, Arc<Runtime>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = RuntimeConfig {
        cache_dir: Some(dir.path().join("compiled")),
        ..Default::default()
    };
    config.engine.max_instances = 16;
    let runtime = Arc::new(Runtime::new(&config).unwrap());
    let pool = connect(&pg.url(), 2).await.unwrap();
    let key = key.map(|k| Arc::new(SecretsKey::from_hex(k).unwrap()));
    let registry = Registry::new(
        Arc::new(PostgresRegistryStore::new(pool.clone())),
        runtime.clone(),
        50 << 20,
    )
    .with_access(Arc::new(PostgresAccess::new(pool)), key);
    (registry, runtime, dir)
}

/// ValidateUser with a custom section: the same code, a digest of its own per type.
fn variant(name: &str) -> Vec<u8> {
    let bytes = test_components::read(test_components::VALIDATE_USER);
    test_support::with_custom_section(&bytes, "joining", name.as_bytes())
}

/// Warms `registry` up and answers how many components its runtime compiled for it.
async fn warmed(registry: &Registry, runtime: &Runtime) -> u64 {
    let before = runtime.compilations();
    assert!(registry.open().await.unwrap().is_empty());
    assert!(registry.warm_up().await.is_empty());
    runtime.compilations() - before
}

#[tokio::test(flavor = "multi_thread")]
async fn a_joining_host_serves_at_once_and_loads_what_another_host_compiled() {
    let pg = Postgres::start().expect("postgres");
    let key = "ab".repeat(32);
    let (first, first_runtime, _d1) = host(&pg, Some(&key)).await;
    for name in TYPES {
        let request = DeployRequest {
            deployed_by: "test".into(),
            ..Default::default()
        };
        first.deploy(name, variant(name), request).await.unwrap();
    }
    assert_eq!(first_runtime.compilations(), TYPES.len() as u64);

    // A host joining: every type is served (described) before anything is loaded.
    let (joining, runtime, _d2) = host(&pg, Some(&key)).await;
    assert!(joining.open().await.unwrap().is_empty());
    for name in TYPES {
        assert!(joining.signature(name).is_some(), "{name} is not served");
        assert!(
            joining.get(name).is_none(),
            "{name} was loaded before any call"
        );
    }
    // A call loads its own version, from the first host's artifact, and runs it.
    let key_of_call = CallKey {
        activity_id: "1".into(),
        ..Default::default()
    };
    let component = joining.resolve(TYPES[1], &key_of_call).await.unwrap();
    assert_eq!(component.compiled_from(), CompiledFrom::Shared);
    let user = [json!({"user_id": "u1", "email": "a@b.io", "name": "Ann"})];
    let result = runtime
        .invoke(&component, &user, CallContext::for_type(TYPES[1]))
        .await
        .unwrap();
    assert_eq!(result.output["valid"], json!(true), "{:?}", result.output);
    // The warm-up loads the rest; nothing is compiled on this host.
    assert!(joining.warm_up().await.is_empty());
    for name in TYPES {
        let loaded = joining.get(name).expect("loaded by the warm-up");
        assert_eq!(loaded.compiled_from(), CompiledFrom::Shared, "{name}");
    }
    assert_eq!(runtime.compilations(), 0);

    // Another key (another fleet's, or a host misconfigured) opens no artifact: it compiles.
    let (other, other_runtime, _d3) = host(&pg, Some(&"cd".repeat(32))).await;
    assert_eq!(warmed(&other, &other_runtime).await, TYPES.len() as u64);
    // So does a host with no secrets key: it neither loads nor shares artifacts.
    let (keyless, keyless_runtime, _d4) = host(&pg, None).await;
    assert_eq!(warmed(&keyless, &keyless_runtime).await, TYPES.len() as u64);

    // An artifact altered in the database is refused and compiled; the compiling host
    // shares a good one again, which the next host loads.
    let altered = ComponentDigest::of(&variant(TYPES[0]));
    let db = connect(&pg.url(), 1).await.unwrap();
    let changed = db
        .get()
        .await
        .unwrap()
        .execute(
            "UPDATE registry_artifacts SET sealed = sealed || '\\x00'::bytea WHERE digest = $1",
            &[&altered.as_str()],
        )
        .await
        .unwrap();
    // One per key: the other key's host keeps its own rather than replacing the fleet's.
    assert_eq!(changed, 2, "the artifacts of {} under both keys", TYPES[0]);
    let (repairing, repairing_runtime, _d5) = host(&pg, Some(&key)).await;
    assert_eq!(warmed(&repairing, &repairing_runtime).await, 1);
    let (next, next_runtime, _d6) = host(&pg, Some(&key)).await;
    assert_eq!(warmed(&next, &next_runtime).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pinned_run_never_switches_version_while_the_store_is_unreachable() {
    let mut pg = Postgres::start().expect("postgres");
    let (registry, _runtime, _dir) = host(&pg, None).await;
    let pinned = || DeployRequest {
        deployed_by: "test".into(),
        rollout: Some(RolloutPolicy::Pinned),
        ..Default::default()
    };
    let v1 = registry
        .deploy("Pinned", variant("v1"), pinned())
        .await
        .unwrap()
        .version
        .digest;
    let run = |id: &str| CallKey {
        workflow_id: Some(id.into()),
        run_id: Some(format!("{id}-run")),
        activity_id: "1".into(),
    };
    let digest = |r: activity_runtime::Resolved| r.map(|c| c.digest().clone());
    assert_eq!(
        digest(registry.resolve("Pinned", &run("old")).await),
        Ok(v1.clone())
    );
    let v2 = registry
        .deploy("Pinned", variant("v2"), pinned())
        .await
        .unwrap()
        .version
        .digest;
    assert_ne!(v1, v2);

    pg.stop();
    // The old run keeps v1 (the pin this host read before the deploy), not the active v2.
    assert_eq!(
        digest(registry.resolve("Pinned", &run("old")).await),
        Ok(v1.clone())
    );
    // A run this host has no pin for cannot be told which version it had: retried.
    let unknown = registry.resolve("Pinned", &run("unknown")).await;
    assert!(
        matches!(&unknown, Err(Unresolved::Unavailable(why)) if why.contains("pinned")),
        "{:?}",
        unknown.map(|c| c.digest().clone())
    );

    pg.start_again().expect("postgres again");
    assert_eq!(
        digest(registry.resolve("Pinned", &run("unknown")).await),
        Ok(v2)
    );
    assert_eq!(
        digest(registry.resolve("Pinned", &run("old")).await),
        Ok(v1)
    );
}
