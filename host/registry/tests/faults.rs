//! A deploy under store faults: whichever write fails, an answered error leaves the active
//! version as it was (the version, its activation and its rollout are one transaction).

use std::collections::BTreeMap;
use std::sync::Arc;

use activity_registry::rollout::RolloutState;
use activity_registry::rollout::{RolloutEvent, RolloutPolicy};
use activity_registry::{
    DeployRequest, Registry, RegistryStore, RolloutChange, StoreError, VersionRecord,
};
use activity_runtime::{ComponentDigest, Runtime, RuntimeConfig};
use activity_sqlite::SqliteRegistryStore;

/// A SQLite store whose `fails` method answers a database error.
struct Faulty {
    inner: SqliteRegistryStore,
    fails: &'static str,
}

impl Faulty {
    fn check(&self, method: &str) -> Result<(), StoreError> {
        if self.fails == method {
            return Err(StoreError::Database(format!("{method}: connection lost")));
        }
        Ok(())
    }
}

impl RegistryStore for Faulty {
    fn put_blob(&self, digest: &ComponentDigest, bytes: &[u8]) -> Result<(), StoreError> {
        self.check("put_blob")?;
        self.inner.put_blob(digest, bytes)
    }
    fn blob(&self, digest: &ComponentDigest) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.blob(digest)
    }
    fn artifact(&self, e: &str, d: &ComponentDigest) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.artifact(e, d)
    }
    fn put_artifact(&self, e: &str, d: &ComponentDigest, s: &[u8]) -> Result<(), StoreError> {
        self.inner.put_artifact(e, d, s)
    }
    fn add_version(
        &self,
        activity: &str,
        record: VersionRecord,
        activate: bool,
        rollout: Option<RolloutChange>,
    ) -> Result<VersionRecord, StoreError> {
        self.check("add_version")?;
        self.inner.add_version(activity, record, activate, rollout)
    }
    fn set_active(&self, activity: &str, seq: u64) -> Result<(), StoreError> {
        self.check("set_active")?;
        self.inner.set_active(activity, seq)
    }
    fn versions(&self, a: &str) -> Result<(Vec<VersionRecord>, Option<u64>), StoreError> {
        self.inner.versions(a)
    }
    fn active(&self) -> Result<Vec<VersionRecord>, StoreError> {
        self.inner.active()
    }
    fn remove(&self, activity: &str) -> Result<bool, StoreError> {
        self.inner.remove(activity)
    }
    fn rollouts(&self) -> Result<BTreeMap<String, RolloutState>, StoreError> {
        self.inner.rollouts()
    }
    fn rollout(&self, activity: &str) -> Result<RolloutState, StoreError> {
        self.inner.rollout(activity)
    }
    fn set_rollout(&self, activity: &str, change: RolloutChange) -> Result<(), StoreError> {
        self.check("set_rollout")?;
        self.inner.set_rollout(activity, change)
    }
    fn events(&self, activity: &str, limit: usize) -> Result<Vec<RolloutEvent>, StoreError> {
        self.inner.events(activity, limit)
    }
    fn pin(&self, a: &str, k: &str, s: Option<u64>, at: u64) -> Result<u64, StoreError> {
        self.inner.pin(a, k, s, at)
    }
    fn sweep_pins(&self, before_ms: u64) -> Result<u64, StoreError> {
        self.inner.sweep_pins(before_ms)
    }
    fn pin_count(&self, activity: &str) -> Result<u64, StoreError> {
        self.inner.pin_count(activity)
    }
}

fn registry(dir: &std::path::Path, fails: &'static str) -> (Registry, SqliteRegistryStore) {
    let mut config = RuntimeConfig::default();
    config.engine.max_instances = 16;
    let runtime = Arc::new(Runtime::new(&config).unwrap());
    let open =
        || SqliteRegistryStore::open(&dir.join("registry.sqlite"), &dir.join("modules")).unwrap();
    let store = Faulty {
        inner: open(),
        fails,
    };
    (Registry::new(Arc::new(store), runtime, 50 << 20), open())
}

#[tokio::test]
async fn a_deploy_that_answers_an_error_left_nothing_live() {
    for fails in ["put_blob", "add_version", "set_rollout", "set_active"] {
        for policy in [RolloutPolicy::Immediate, RolloutPolicy::Ramp] {
            let dir = tempfile::tempdir().unwrap();
            let (healthy, _) = registry(dir.path(), "");
            healthy
                .deploy(
                    "ValidateUser",
                    test_components::read(test_components::VALIDATE_USER),
                    DeployRequest::default(),
                )
                .await
                .unwrap();
            let (registry, store) = registry(dir.path(), fails);
            let before = store.versions("ValidateUser").unwrap();
            let answer = registry
                .deploy(
                    "ValidateUser",
                    test_components::read(test_components::MISBEHAVING),
                    DeployRequest {
                        export: Some("strict-validate-user".into()),
                        grants: activity_runtime::Grants {
                            allowed_hosts: vec!["hosts.invalid".into()],
                            ..Default::default()
                        },
                        rollout: Some(policy),
                        ramp_percent: Some(10),
                        ..Default::default()
                    },
                )
                .await;
            let (versions, active) = store.versions("ValidateUser").unwrap();
            let rollout = store.rollout("ValidateUser").unwrap();
            if fails == "set_active" {
                // Not a write a deploy makes: it goes through.
                assert!(answer.is_ok(), "{answer:?}");
            }
            match answer {
                Err(e) => {
                    assert_eq!(
                        (versions.len(), active),
                        (before.0.len(), before.1),
                        "{fails}, {policy:?}: the deploy answered {e} and left a version"
                    );
                    assert!(
                        rollout.candidate.is_none(),
                        "{fails}, {policy:?}: {rollout:?}"
                    );
                }
                Ok(outcome) => {
                    let latest = versions.last().unwrap().seq;
                    match policy {
                        RolloutPolicy::Ramp => {
                            assert_eq!(rollout.candidate.map(|c| c.seq), Some(latest));
                            assert!(outcome.candidate.is_some());
                        }
                        _ => assert_eq!(active, Some(latest), "{fails}, {policy:?}"),
                    }
                    let events = store.events("ValidateUser", 1).unwrap();
                    assert_eq!(
                        events[0].digest.as_ref(),
                        Some(&versions.last().unwrap().digest)
                    );
                }
            }
        }
    }
}
