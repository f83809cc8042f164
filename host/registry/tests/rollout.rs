//! Rollouts in one registry with real components: pins, ramps, promote, abort (by hand and
//! by itself), rollback's effect on pins, bad input that changes nothing.

use std::sync::Arc;

use activity_registry::rollout::{EventKind, RolloutPolicy};
use activity_registry::{DeployRequest, Registry, RegistryError, RolloutSettings};
use activity_runtime::{
    ActivityCatalog, ActivityFailure, CallKey, ComponentDigest, Finished, Runtime, RuntimeConfig,
    Usage,
};
use activity_sqlite::SqliteRegistryStore;

fn registry(dir: &std::path::Path) -> Registry {
    let mut config = RuntimeConfig {
        cache_dir: Some(dir.join("compiled")),
        ..Default::default()
    };
    config.engine.max_instances = 16;
    let runtime = Arc::new(Runtime::new(&config).unwrap());
    let store =
        SqliteRegistryStore::open(&dir.join("registry.sqlite"), &dir.join("modules")).unwrap();
    Registry::new(Arc::new(store), runtime, 50 << 20).with_rollout(RolloutSettings::default())
}

fn deploy_request(rollout: RolloutPolicy, ramp: Option<u8>, export: Option<&str>) -> DeployRequest {
    DeployRequest {
        deployed_by: "test".into(),
        export: export.map(str::to_string),
        // The test component imports outgoing HTTP; a host that resolves nowhere.
        grants: activity_runtime::Grants {
            allowed_hosts: export
                .map(|_| vec!["hosts.invalid".to_string()])
                .unwrap_or_default(),
            ..Default::default()
        },
        rollout: Some(rollout),
        ramp_percent: ramp,
        ..Default::default()
    }
}

fn run(workflow: &str) -> CallKey {
    CallKey {
        workflow_id: Some(workflow.into()),
        run_id: Some(format!("{workflow}-run")),
        activity_id: "1".into(),
    }
}

async fn version(registry: &Registry, key: &CallKey) -> ComponentDigest {
    registry
        .resolve("ValidateUser", key)
        .await
        .expect("served")
        .digest()
        .clone()
}

/// Tells `registry` a call of ValidateUser's version `digest` ran.
async fn finish(registry: &Registry, digest: &ComponentDigest, failure: Option<&ActivityFailure>) {
    registry
        .finished(Finished {
            activity_type: "ValidateUser",
            digest,
            failure,
            usage: &Usage::default(),
            caller: "test",
        })
        .await;
}

const STRICT: Option<&str> = Some("strict-validate-user");
const UNRULY: Option<&str> = Some("unruly-validate-user");

/// v1: the real ValidateUser.
async fn stable(registry: &Registry) -> ComponentDigest {
    registry
        .deploy(
            "ValidateUser",
            test_components::read(test_components::VALIDATE_USER),
            deploy_request(RolloutPolicy::Immediate, None, None),
        )
        .await
        .unwrap()
        .version
        .digest
}

#[tokio::test]
async fn a_pinned_run_keeps_its_version_and_new_runs_get_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let v1 = registry
        .deploy(
            "ValidateUser",
            test_components::read(test_components::VALIDATE_USER),
            deploy_request(RolloutPolicy::Pinned, None, None),
        )
        .await
        .unwrap()
        .version
        .digest;
    let old = run("old");
    assert_eq!(version(&registry, &old).await, v1);
    let v2 = registry
        .deploy(
            "ValidateUser",
            test_components::read(test_components::MISBEHAVING),
            deploy_request(RolloutPolicy::Pinned, None, STRICT),
        )
        .await
        .unwrap();
    assert!(v2.changed && v2.candidate.is_none());
    let v2 = v2.version.digest;
    assert_ne!(v1, v2);
    assert_eq!(version(&registry, &old).await, v1, "the old run keeps v1");
    assert_eq!(version(&registry, &run("new")).await, v2);

    // Another host on the same store (a restart) agrees, from the stored pins.
    drop(registry);
    let again = self::registry(dir.path());
    again.load_all().await.unwrap();
    assert_eq!(version(&again, &old).await, v1);
    assert_eq!(version(&again, &run("new")).await, v2);
    let details = again.details("ValidateUser").await.unwrap();
    assert_eq!(details.pins, 2);
    assert_eq!(details.policy, RolloutPolicy::Pinned);

    // A rollback from v2 drops the pins to it: that run follows to v1.
    again.rollback("ValidateUser", None, "test").await.unwrap();
    assert_eq!(version(&again, &run("new")).await, v1);
    assert_eq!(version(&again, &old).await, v1);
    let kinds: Vec<EventKind> = again
        .details("ValidateUser")
        .await
        .unwrap()
        .events
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![EventKind::Rollback, EventKind::Deploy, EventKind::Deploy]
    );
}

#[tokio::test]
async fn a_ramp_gives_its_share_and_each_run_one_version_until_promoted() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let v1 = stable(&registry).await;
    let outcome = registry
        .deploy(
            "ValidateUser",
            test_components::read(test_components::MISBEHAVING),
            deploy_request(RolloutPolicy::Ramp, Some(30), STRICT),
        )
        .await
        .unwrap();
    assert_eq!(outcome.version.digest, v1, "the active version stays");
    let candidate = outcome.candidate.expect("a candidate").digest;
    let mut on_candidate = Vec::new();
    for i in 0..400 {
        let key = run(&format!("user-{i}"));
        if version(&registry, &key).await == candidate {
            on_candidate.push(key);
        }
    }
    let share = on_candidate.len() as f64 / 400.0;
    assert!((0.23..=0.37).contains(&share), "candidate share {share}");

    // Raising the ramp and promoting never move a run that already called the type.
    registry.ramp("ValidateUser", 80, "test").await.unwrap();
    registry.promote("ValidateUser", "test").await.unwrap();
    for i in 0..400 {
        let key = run(&format!("user-{i}"));
        let expected = if on_candidate.contains(&key) {
            &candidate
        } else {
            &v1
        };
        assert_eq!(&version(&registry, &key).await, expected, "user-{i}");
    }
    assert_eq!(version(&registry, &run("later")).await, candidate);
    assert!(matches!(
        registry.promote("ValidateUser", "test").await,
        Err(RegistryError::NoCandidate(_))
    ));
}

#[tokio::test]
async fn bad_rollout_requests_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    assert!(matches!(
        registry.abort("ValidateUser", "test", None).await,
        Err(RegistryError::NotFound(_))
    ));
    stable(&registry).await;
    for result in [
        registry.abort("ValidateUser", "test", None).await,
        registry.ramp("ValidateUser", 10, "test").await,
    ] {
        assert!(
            matches!(result, Err(RegistryError::NoCandidate(_))),
            "{result:?}"
        );
    }
    let over = registry
        .deploy(
            "ValidateUser",
            test_components::read(test_components::MISBEHAVING),
            deploy_request(RolloutPolicy::Ramp, Some(101), STRICT),
        )
        .await;
    assert!(
        matches!(over, Err(RegistryError::InvalidRamp(101))),
        "{over:?}"
    );
    registry
        .deploy(
            "ValidateUser",
            test_components::read(test_components::MISBEHAVING),
            deploy_request(RolloutPolicy::Ramp, Some(10), STRICT),
        )
        .await
        .unwrap();
    assert!(matches!(
        registry.ramp("ValidateUser", 150, "test").await,
        Err(RegistryError::InvalidRamp(150))
    ));
    let details = registry.details("ValidateUser").await.unwrap();
    assert_eq!(details.candidate.expect("candidate").ramp_percent, 10);
    assert_eq!(details.versions.len(), 2);
}

#[tokio::test]
async fn a_failing_candidate_is_aborted_by_itself_and_its_runs_go_back() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let v1 = stable(&registry).await;
    let candidate = registry
        .deploy(
            "ValidateUser",
            test_components::read(test_components::MISBEHAVING),
            deploy_request(RolloutPolicy::Ramp, Some(100), UNRULY),
        )
        .await
        .unwrap()
        .candidate
        .unwrap()
        .digest;
    let trap = ActivityFailure::new(activity_runtime::kinds::GUEST_TRAP, "trapped", false);
    let retryable = ActivityFailure::new("ServiceDown", "try later", false);
    // Retryable application failures do not count.
    for _ in 0..20 {
        finish(&registry, &candidate, Some(&retryable)).await;
    }
    assert!(registry
        .details("ValidateUser")
        .await
        .unwrap()
        .candidate
        .is_some());
    let key = run("unlucky");
    assert_eq!(version(&registry, &key).await, candidate);
    // 20 traps among 40 calls in the window: half, the default limit.
    for _ in 0..19 {
        finish(&registry, &candidate, Some(&trap)).await;
    }
    assert!(registry
        .details("ValidateUser")
        .await
        .unwrap()
        .candidate
        .is_some());
    finish(&registry, &candidate, Some(&trap)).await;
    let details = registry.details("ValidateUser").await.unwrap();
    assert!(details.candidate.is_none(), "aborted");
    let abort = &details.events[0];
    assert_eq!(abort.kind, EventKind::Abort);
    assert_eq!(abort.by, activity_registry::AUTOMATIC_ABORT);
    assert!(
        abort.reason.as_deref().unwrap_or("").contains("failed"),
        "{abort:?}"
    );
    // The run that had the candidate (pinned to it) goes back to the stable version.
    assert_eq!(version(&registry, &key).await, v1);
}

#[tokio::test]
async fn the_automatic_abort_counts_the_calls_of_every_host() {
    let dir = tempfile::tempdir().unwrap();
    let store = |dir: &std::path::Path| {
        Arc::new(
            SqliteRegistryStore::open(&dir.join("registry.sqlite"), &dir.join("modules")).unwrap(),
        )
    };
    // Two hosts of one store: each sees 6 of the candidate's calls fail, under the minimum
    // of 10 calls alone; together 12 of 12.
    let hosts: Vec<Registry> = ["h1", "h2"]
        .into_iter()
        .map(|id| {
            let s = store(dir.path());
            registry(dir.path()).with_ledger(s, id, Default::default())
        })
        .collect();
    stable(&hosts[0]).await;
    let candidate = hosts[0]
        .deploy(
            "ValidateUser",
            test_components::read(test_components::MISBEHAVING),
            deploy_request(RolloutPolicy::Ramp, Some(50), UNRULY),
        )
        .await
        .unwrap()
        .candidate
        .unwrap()
        .digest;
    hosts[1].reconcile().await.unwrap();
    let trap = ActivityFailure::new(activity_runtime::kinds::GUEST_TRAP, "trapped", false);
    for host in &hosts {
        for _ in 0..6 {
            finish(host, &candidate, Some(&trap)).await;
        }
        assert!(host
            .details("ValidateUser")
            .await
            .unwrap()
            .candidate
            .is_some());
    }
    hosts[0].flush_ledger().await.unwrap();
    assert!(hosts[0]
        .details("ValidateUser")
        .await
        .unwrap()
        .candidate
        .is_some());
    // The second host's flush reads the first host's calls: 12 of 12 failed.
    hosts[1].flush_ledger().await.unwrap();
    let details = hosts[1].details("ValidateUser").await.unwrap();
    assert!(details.candidate.is_none(), "aborted");
    let reason = details.events[0].reason.clone().unwrap_or_default();
    assert!(reason.contains("12 of the last 12"), "{reason}");
    // What both hosts counted is in the store once, for either host to answer.
    let rows = hosts[0]
        .usage(0, activity_registry::UsageGroup::Caller, None)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].key.as_str(), rows[0].calls, rows[0].failures),
        ("test", 12, 12)
    );
}
