//! What a deploy may grant beyond outgoing hosts, bounded host-wide (`runtime.policy`):
//! refused at deploy with the reason, and a stored version a tightened policy no longer
//! allows is not served after a restart.

use std::sync::Arc;

use activity_registry::{DeployRequest, Registry, RegistryError};
use activity_runtime::{
    ActivityCatalog, ActivityLimits, GrantPolicy, Grants, Runtime, RuntimeConfig,
};
use activity_sqlite::SqliteRegistryStore;

fn registry(dir: &std::path::Path, policy: GrantPolicy) -> Registry {
    let mut config = RuntimeConfig::default();
    config.engine.max_instances = 16;
    let runtime = Arc::new(Runtime::new(&config).unwrap());
    let store =
        SqliteRegistryStore::open(&dir.join("registry.sqlite"), &dir.join("modules")).unwrap();
    Registry::new(Arc::new(store), runtime, 50 << 20).with_grant_policy(policy)
}

fn create_user(stores: &[&str], max_execution_ms: u64) -> DeployRequest {
    DeployRequest {
        grants: Grants {
            key_value_stores: stores.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
        limits: ActivityLimits {
            max_execution_ms,
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn grants_outside_the_policy_are_refused_and_stop_being_served_when_it_tightens() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = || test_components::read(test_components::CREATE_USER);
    let narrow = GrantPolicy {
        key_value_stores: vec!["orders-*".into()],
        secrets: vec![],
        max_execution_ms: Some(10_000),
    };
    let strict = registry(dir.path(), narrow.clone());
    for (request, says) in [
        (create_user(&["users"], 5_000), "\"users\""),
        (create_user(&["*"], 5_000), "\"*\""),
        (create_user(&["orders-eu"], 60_000), "max_execution_ms"),
    ] {
        match strict.deploy("CreateUser", bytes(), request).await {
            Err(RegistryError::OutsideGrantPolicy(why)) => {
                assert!(
                    why.contains(says) && why.contains("runtime.policy"),
                    "{why}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        strict.list().await.unwrap().is_empty(),
        "nothing was stored"
    );
    strict
        .deploy("CreateUser", bytes(), create_user(&["orders-eu"], 5_000))
        .await
        .unwrap();

    // Deployed under the default policy, then the host restarts under the narrow one.
    let wide = registry(dir.path(), GrantPolicy::default());
    wide.deploy(
        "UpdateUser",
        test_components::read(test_components::UPDATE_USER),
        create_user(&["users"], 5_000),
    )
    .await
    .unwrap();
    let restarted = registry(dir.path(), narrow);
    let failures = restarted.load_all().await.unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        matches!(&failures[0], RegistryError::OutsideGrantPolicy(why) if why.contains("\"users\"")),
        "{failures:?}"
    );
    assert!(restarted.get("UpdateUser").is_none(), "no longer served");
    assert!(
        restarted.get("CreateUser").is_some(),
        "still within the policy"
    );
}
