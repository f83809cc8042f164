//! The module registry: every deployed activity type, its version history and the version
//! that serves it now.
//!
//! A deploy is validated and compiled by the runtime before anything is stored, then the
//! component is stored by digest, the version recorded, and the served component swapped in
//! one step. Calls already running keep the component they started with (they hold an
//! `Arc`). A failed deploy changes nothing.

pub mod access;
mod artifacts;
mod calls;
mod deploys;
mod error;
mod fleet;
pub mod ledger;
pub mod rollout;
mod rollouts;
mod serving;
pub mod settings;
pub mod store;
mod usage;
mod views;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use activity_runtime::{ActivityCatalog, CallKey, CatalogFuture, Finished};
use activity_runtime::{ActivityComponent, ActivitySpec, Runtime};

pub use error::RegistryError;
pub use ledger::{LedgerStore, UsageGroup, UsageSettings, UsageTotal};
pub use settings::{RegistrySettings, RolloutSettings, StorageBackend};
pub use store::{
    from_column, from_text, to_column, to_text, ArtifactSource, FleetHost, FleetStore,
    RegistryStore, RolloutChange, StoreError, VersionRecord,
};
pub use views::{
    ActivityDetails, ActivitySummary, CandidateView, DeployOutcome, DeployRequest, HostServing,
    VersionView,
};

/// Longest activity type name, in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// The registry's Prometheus metrics.
pub mod metric {
    /// Deploy calls, by `activity_type` and `outcome` (`deployed`, `unchanged`, `refused`,
    /// `unavailable`).
    pub const DEPLOYS: &str = "activity_deploys_total";
    /// Rollbacks, by `activity_type`.
    pub const ROLLBACKS: &str = "activity_rollbacks_total";
    /// Activity types this host serves.
    pub const SERVED: &str = "activity_types_served";
    /// Calls by `activity_type`, `version`, `role` (`active`, `candidate` or `pinned`: an
    /// older version a run is pinned to) and `outcome` (`ok`, `failed`).
    pub const ROLLOUT_CALLS: &str = "activity_rollout_calls_total";
    /// Rollout events (`deploy`, `ramp`, `promote`, `abort`, `rollback`) by `activity_type`
    /// and `kind`; automatic aborts have `by="automatic-abort"`.
    pub const ROLLOUT_EVENTS: &str = "activity_rollout_events_total";
    /// 1 for the candidate version this host holds (by `activity_type` and `version`), 0
    /// once dropped.
    pub const CANDIDATE_HELD: &str = "activity_candidate_held";
    /// Every metric this crate records.
    pub const ALL: &[&str] = &[
        DEPLOYS,
        ROLLBACKS,
        SERVED,
        ROLLOUT_CALLS,
        ROLLOUT_EVENTS,
        CANDIDATE_HELD,
    ];
}

/// Who the automatic abort is, in events.
pub const AUTOMATIC_ABORT: &str = "automatic-abort";

/// Hosts whose last heartbeat is older than this are not shown.
pub const FLEET_LIVENESS: std::time::Duration = std::time::Duration::from_secs(5);

/// Checks an activity type name the way Temporal names are written here.
pub fn check_name(name: &str) -> Result<(), RegistryError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(RegistryError::InvalidName(name.to_string()))
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The store of keys and secrets, and the key secrets open with.
type Access = (
    Arc<dyn access::AccessStore>,
    Option<Arc<access::SecretsKey>>,
);

/// The registry of one host: what it serves ([`serving`]), its rollouts ([`rollouts`]: held
/// candidates, pins, outcomes), how deploys change both ([`deploys`]), how one call finds its
/// version ([`calls`]), the fleet's hosts ([`fleet`]) and keys and secrets ([`access`]).
pub struct Registry {
    store: Arc<dyn RegistryStore>,
    runtime: Arc<Runtime>,
    /// The version of each activity type this host serves to calls with no rollout.
    serving: RwLock<BTreeMap<String, serving::HeldVersion>>,
    /// What this host holds of each rollout.
    rollouts: rollouts::Rollouts,
    /// False on a host that never runs activities: versions are described from their stored
    /// signatures, not compiled.
    executes: bool,
    /// One change at a time, so history and serving map agree.
    changes: tokio::sync::Mutex<()>,
    max_component_bytes: usize,
    /// The hosts table of a fleet, with a shared store.
    fleet: Option<Arc<dyn FleetStore>>,
    /// Keys and secrets, with the key secrets are sealed with.
    access: Option<Access>,
    /// What calls cost, kept in the store with the other hosts'.
    ledger: Option<usage::HostLedger>,
    /// What a deploy may grant beyond outgoing hosts (`runtime.policy`).
    policy: activity_runtime::GrantPolicy,
}

impl Registry {
    /// A registry over `store`, loading components with `runtime`.
    pub fn new(
        store: Arc<dyn RegistryStore>,
        runtime: Arc<Runtime>,
        max_component_bytes: usize,
    ) -> Self {
        Self {
            store,
            runtime,
            serving: RwLock::default(),
            rollouts: rollouts::Rollouts::default(),
            executes: true,
            changes: tokio::sync::Mutex::new(()),
            max_component_bytes,
            fleet: None,
            access: None,
            ledger: None,
            policy: activity_runtime::GrantPolicy::default(),
        }
    }

    /// Keys and secrets in `store`; secrets open with `key` (none: secrets are refused).
    pub fn with_access(
        mut self,
        store: Arc<dyn access::AccessStore>,
        key: Option<Arc<access::SecretsKey>>,
    ) -> Self {
        self.access = Some((store, key));
        self
    }

    /// Bounds what a deploy may grant (and what a stored version may keep serving with).
    pub fn with_grant_policy(mut self, policy: activity_runtime::GrantPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Why `spec` is outside the host's policies (egress hosts, `runtime.policy`), if it is.
    pub(crate) fn check_policy(&self, spec: &ActivitySpec) -> Result<(), RegistryError> {
        self.runtime
            .egress()
            .check_grants(&spec.grants)
            .map_err(RegistryError::OutsidePolicy)?;
        self.policy
            .check(
                &spec.grants,
                &spec.limits,
                "this host's policy, runtime.policy",
            )
            .map_err(RegistryError::OutsideGrantPolicy)
    }

    /// Rollout defaults, the automatic abort and the pins' lifetime.
    pub fn with_rollout(mut self, rollout: settings::RolloutSettings) -> Self {
        self.rollouts.settings = rollout;
        self
    }

    /// The registry of a host that never runs activities (the `server` role): versions are
    /// described by the signature stored with them instead of compiled, so it starts in
    /// milliseconds; deploys through it still compile once, to check the component.
    pub fn without_execution(mut self) -> Self {
        self.executes = false;
        self
    }

    /// The runtime this registry loads components with.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The largest component accepted, in bytes.
    pub fn max_component_bytes(&self) -> usize {
        self.max_component_bytes
    }

    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        op: impl FnOnce(&dyn RegistryStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, RegistryError> {
        off_thread(self.store.clone(), op).await
    }
}

/// Runs `op` on `store` off the async threads: every store trait here blocks.
pub(crate) async fn off_thread<S: ?Sized + Send + Sync + 'static, T: Send + 'static>(
    store: Arc<S>,
    op: impl FnOnce(&S) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, RegistryError> {
    tokio::task::spawn_blocking(move || op(store.as_ref()))
        .await
        .map_err(|e| StoreError::Database(format!("store task failed: {e}")))?
        .map_err(RegistryError::from)
}

impl ActivityCatalog for Registry {
    fn get(&self, activity_type: &str) -> Option<Arc<ActivityComponent>> {
        self.serving.read().ok()?.get(activity_type)?.component()
    }

    fn names(&self) -> Vec<String> {
        self.serving
            .read()
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn resolve<'a>(
        &'a self,
        activity_type: &'a str,
        key: &'a CallKey,
    ) -> CatalogFuture<'a, activity_runtime::Resolved> {
        Box::pin(self.resolve_call(activity_type, key))
    }

    fn finished<'a>(&'a self, call: Finished<'a>) -> CatalogFuture<'a, ()> {
        Box::pin(self.count_call(call))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_temporal_activity_type_rules() {
        for ok in [
            "ValidateUser",
            "send_notification",
            "v1.2-beta",
            &"a".repeat(255),
        ] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "has space",
            "slash/name",
            "ünïcode",
            &"a".repeat(256),
            "semi;colon",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
