//! Where deployments are kept: component bytes by digest, and per activity type its version
//! history and which version is active. A trait, so a shared PostgreSQL store can stand
//! beside the SQLite one.

use std::collections::BTreeMap;
use std::time::Duration;

use activity_runtime::{ActivitySpec, ComponentDigest, Signature};
use serde::de::DeserializeOwned;

use crate::rollout::{RolloutEvent, RolloutState};
use serde::{Deserialize, Serialize};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("registry database: {0}")]
    Database(String),
    /// The blob directory failed.
    #[error("registry blob store: {0}")]
    Blob(#[from] std::io::Error),
    /// A stored record could not be read back.
    #[error("registry record is corrupt: {0}")]
    Corrupt(String),
}

/// One deployment of an activity type: a component version with its grants and limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// Position in the activity's history, from 1.
    pub seq: u64,
    /// Digest of the component's bytes.
    pub digest: ComponentDigest,
    /// Size of the component in bytes.
    pub size: u64,
    /// Milliseconds since the Unix epoch of the deployment.
    pub deployed_at_ms: u64,
    /// Who deployed it (the API's caller, the watched directory, ...).
    pub deployed_by: String,
    /// Activity type, export, grants and limits.
    pub spec: ActivitySpec,
    /// The OCI artifact it was pulled from, when deployed by reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ArtifactSource>,
    /// The export's parameters and result as WIT types, read when it was deployed: a host
    /// checks invoke arguments against it without compiling the component. `None` for
    /// versions deployed before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

/// The stored form (JSON) of an optional part of a record, for a nullable text column.
pub fn to_column<T: Serialize>(part: &Option<T>) -> Option<String> {
    part.as_ref().and_then(|p| serde_json::to_string(p).ok())
}

/// The stored form (JSON) of a record's part, for a text column.
pub fn to_text<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Reads back what [`to_text`] stored; `what` names it in the error.
pub fn from_text<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// Reads back what [`to_column`] stored; `what` and `seq` name it in the error.
pub fn from_column<T: DeserializeOwned>(
    what: &str,
    seq: u64,
    text: Option<String>,
) -> Result<Option<T>, StoreError> {
    text.map(|t| {
        serde_json::from_str(&t)
            .map_err(|e| StoreError::Corrupt(format!("{what} of version {seq}: {e}")))
    })
    .transpose()
}

/// The OCI artifact a version was pulled from: what CI built, traceable from what runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ArtifactSource {
    /// The reference deployed (`oci://registry/repository:tag` or `...@sha256:...`).
    pub reference: String,
    /// The manifest digest the reference resolved to (`REPOSITORY@DIGEST` pins it).
    pub manifest_digest: String,
}

/// Storage of the registry. Implementations block; the registry calls them off the async threads.
pub trait RegistryStore: Send + Sync + 'static {
    /// Stores `bytes` under `digest`; storing the same digest again is a no-op.
    fn put_blob(&self, digest: &ComponentDigest, bytes: &[u8]) -> Result<(), StoreError>;
    /// The bytes stored under `digest`.
    fn blob(&self, digest: &ComponentDigest) -> Result<Option<Vec<u8>>, StoreError>;
    /// The compiled artifact (sealed, as [`put_artifact`](Self::put_artifact) stored it) of
    /// component `digest` under `engine` (the engine's settings and the sealing key's id),
    /// when one is shared.
    fn artifact(
        &self,
        engine: &str,
        digest: &ComponentDigest,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// Shares a compiled artifact with the other hosts of this store, replacing one stored
    /// under the same engine and digest. A store whose hosts share a compiled directory
    /// already (SQLite: one machine) may keep nothing.
    fn put_artifact(
        &self,
        engine: &str,
        digest: &ComponentDigest,
        sealed: &[u8],
    ) -> Result<(), StoreError>;
    /// Appends a version to `activity`'s history, makes it active when `activate`, and
    /// records `rollout` (the deploy's rollout state and event, as
    /// [`set_rollout`](Self::set_rollout) does), in one transaction: a deploy is live with
    /// its rollout or not at all. A candidate in `rollout`'s state names the version being
    /// added, whatever its `seq`. Returns the record with its sequence number.
    fn add_version(
        &self,
        activity: &str,
        record: VersionRecord,
        activate: bool,
        rollout: Option<RolloutChange>,
    ) -> Result<VersionRecord, StoreError>;
    /// Makes version `seq` of `activity` active.
    fn set_active(&self, activity: &str, seq: u64) -> Result<(), StoreError>;
    /// `activity`'s history, oldest first, and the active sequence number.
    fn versions(&self, activity: &str) -> Result<(Vec<VersionRecord>, Option<u64>), StoreError>;
    /// Every activity type with its active version.
    fn active(&self) -> Result<Vec<VersionRecord>, StoreError>;
    /// Forgets `activity` (its history, active version, rollout, events and pins); blobs
    /// stay for other users.
    fn remove(&self, activity: &str) -> Result<bool, StoreError>;

    /// Every activity type's rollout state (types never deployed with a policy are absent:
    /// `immediate`, no candidate).
    fn rollouts(&self) -> Result<BTreeMap<String, RolloutState>, StoreError>;
    /// `activity`'s rollout state (the default, `immediate` without a candidate, when none
    /// is stored).
    fn rollout(&self, activity: &str) -> Result<RolloutState, StoreError>;
    /// Stores `activity`'s rollout state, makes `activate` active when given, drops the pins
    /// to `unpin` when given, and appends `event`, in one transaction.
    fn set_rollout(&self, activity: &str, change: RolloutChange) -> Result<(), StoreError>;
    /// `activity`'s latest events, newest first.
    fn events(&self, activity: &str, limit: usize) -> Result<Vec<RolloutEvent>, StoreError>;
    /// Pins `key` (a run or a standalone activity) to version `seq` of `activity` (`None`:
    /// the version active in the store now, whatever a host that has not caught up yet
    /// serves) unless it has a pin already; returns the pinned version. The first writer
    /// wins, so every host agrees.
    fn pin(
        &self,
        activity: &str,
        key: &str,
        seq: Option<u64>,
        at_ms: u64,
    ) -> Result<u64, StoreError>;
    /// Drops pins made before `before_ms`; returns how many.
    fn sweep_pins(&self, before_ms: u64) -> Result<u64, StoreError>;
    /// How many pins `activity` has.
    fn pin_count(&self, activity: &str) -> Result<u64, StoreError>;
}

/// One change of a rollout, written in one transaction.
#[derive(Debug, Clone)]
pub struct RolloutChange {
    /// The state after the change.
    pub state: RolloutState,
    /// The version to make active, if any.
    pub activate: Option<u64>,
    /// The versions whose pins are dropped (an aborted candidate, a version rolled back
    /// from).
    pub unpin: Vec<u64>,
    /// What happened.
    pub event: RolloutEvent,
}

/// A live host of a fleet sharing one store, as its last heartbeat described it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetHost {
    /// The host's id (host name and process id).
    pub host_id: String,
    /// Its REST API address.
    pub api: String,
    /// Milliseconds since the Unix epoch of its start.
    pub started_at_ms: u64,
    /// Milliseconds since its last heartbeat, by the database's clock.
    pub last_seen_ms_ago: u64,
    /// Activity type -> digest of the version it serves.
    pub serving: BTreeMap<String, String>,
}

/// The hosts of a fleet: each heartbeats what it serves; anyone reads who is alive.
/// Implementations block; the registry calls them off the async threads.
pub trait FleetStore: Send + Sync + 'static {
    /// Records that `host_id` is alive and serves `serving`.
    fn beat(
        &self,
        host_id: &str,
        api: &str,
        started_at_ms: u64,
        serving: &BTreeMap<String, String>,
    ) -> Result<(), StoreError>;
    /// Hosts heard from within `within`, by host id.
    fn live(&self, within: Duration) -> Result<Vec<FleetHost>, StoreError>;
}
