//! The module registry: every deployed activity type, its version history and the version
//! that serves it now.
//!
//! A deploy is validated and compiled by the runtime before anything is stored, then the
//! component is stored by digest, the version recorded, and the served component swapped in
//! one step. Calls already running keep the component they started with (they hold an
//! `Arc`). A failed deploy changes nothing.

pub mod access;
mod error;
pub mod rollout;
pub mod settings;
pub mod store;
mod views;

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use activity_runtime::{ActivityCatalog, ActivityFailure, CallKey, CatalogFuture};
use activity_runtime::{ActivityComponent, ActivitySpec, ComponentDigest, Runtime, Signature};
use lru::LruCache;
use rollout::{Candidate, EventKind, Outcomes, RolloutEvent, RolloutPolicy, RolloutState};

pub use error::RegistryError;
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
/// Events shown with an activity type.
const EVENTS_SHOWN: usize = 20;
/// Compiled versions other than the active one and the candidate kept for pinned runs.
const OLDER_VERSIONS_KEPT: usize = 32;
/// Pins remembered on this host (the store holds them all).
const PINS_CACHED: usize = 100_000;
/// How often a host sweeps expired pins (on reconcile).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

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

/// What this host holds of a version: the active one, or a candidate.
struct Served {
    seq: u64,
    digest: ComponentDigest,
    spec: ActivitySpec,
    signature: Arc<Signature>,
    /// The compiled component; `None` on a host that only checks calls (the `server` role).
    component: Option<Arc<ActivityComponent>>,
}

impl Served {
    fn compiled(seq: u64, component: ActivityComponent, keep: bool) -> Self {
        Self {
            seq,
            digest: component.digest().clone(),
            spec: component.spec().clone(),
            signature: component.signature().clone(),
            component: keep.then(|| Arc::new(component)),
        }
    }
}

/// What this host holds of an activity type's rollout: its state and its candidate.
#[derive(Default)]
struct Trial {
    state: RolloutState,
    candidate: Option<Served>,
}

/// The store of keys and secrets, and the key secrets open with.
type Access = (
    Arc<dyn access::AccessStore>,
    Option<Arc<access::SecretsKey>>,
);

/// The registry of one host.
pub struct Registry {
    store: Arc<dyn RegistryStore>,
    runtime: Arc<Runtime>,
    serving: RwLock<BTreeMap<String, Served>>,
    trials: RwLock<BTreeMap<String, Trial>>,
    rollout: settings::RolloutSettings,
    /// Bumped on every change of what serves: cached pins of an earlier generation are
    /// read from the store again.
    generation: AtomicU64,
    pins: Mutex<LruCache<(String, u64, String), u64>>,
    older: Mutex<LruCache<(String, u64), Arc<ActivityComponent>>>,
    outcomes: Mutex<Outcomes>,
    last_sweep: Mutex<Option<Instant>>,
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
            trials: RwLock::default(),
            rollout: settings::RolloutSettings::default(),
            generation: AtomicU64::new(0),
            pins: Mutex::new(LruCache::new(
                NonZeroUsize::new(PINS_CACHED).unwrap_or(NonZeroUsize::MIN),
            )),
            older: Mutex::new(LruCache::new(
                NonZeroUsize::new(OLDER_VERSIONS_KEPT).unwrap_or(NonZeroUsize::MIN),
            )),
            outcomes: Mutex::default(),
            last_sweep: Mutex::new(None),
            executes: true,
            changes: tokio::sync::Mutex::new(()),
            max_component_bytes,
            fleet: None,
            access: None,
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

    /// Reads the secrets again and hands their values to the runtime's egress (on start,
    /// after a change through this host, and on every reconcile). A secret that does not
    /// open with this host's key is left out, with a warning naming it.
    pub async fn reload_secrets(&self) {
        let Some((store, key)) = self.access.clone() else {
            return;
        };
        let sealed = match tokio::task::spawn_blocking(move || store.secrets()).await {
            Ok(Ok(sealed)) => sealed,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read secrets");
                return;
            }
            Err(_) => return,
        };
        let mut opened = BTreeMap::new();
        for secret in sealed {
            let value = match key.as_deref().map(|k| k.open(&secret.name, &secret.sealed)) {
                Some(Ok(value)) => value,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "secret left out");
                    continue;
                }
                None => {
                    tracing::warn!(
                        secret = secret.name.as_str(),
                        "secret left out: this host has no secrets key"
                    );
                    continue;
                }
            };
            opened.insert(
                secret.name,
                activity_runtime::egress::Secret {
                    value,
                    hosts: secret.hosts,
                },
            );
        }
        self.runtime.egress().set_secrets(opened);
    }

    /// Rollout defaults, the automatic abort and the pins' lifetime.
    pub fn with_rollout(mut self, rollout: settings::RolloutSettings) -> Self {
        self.rollout = rollout;
        self
    }

    /// The registry of a host that never runs activities (the `server` role): versions are
    /// described by the signature stored with them instead of compiled, so it starts in
    /// milliseconds; deploys through it still compile once, to check the component.
    pub fn without_execution(mut self) -> Self {
        self.executes = false;
        self
    }

    /// The digest and the export's signature of the version of `name` this host holds:
    /// what an invoke's arguments are checked against.
    pub fn signature(&self, name: &str) -> Option<(ComponentDigest, Arc<Signature>)> {
        let serving = self.serving.read().ok()?;
        let served = serving.get(name)?;
        Some((served.digest.clone(), served.signature.clone()))
    }

    /// Every activity type this host holds, with its export's signature.
    pub fn signatures(&self) -> Vec<(String, Arc<Signature>)> {
        self.serving
            .read()
            .map(|s| {
                s.iter()
                    .map(|(name, served)| (name.clone(), served.signature.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The registry of a fleet: heartbeats go to `fleet`, and details show every live host.
    pub fn with_fleet(mut self, fleet: Arc<dyn FleetStore>) -> Self {
        self.fleet = Some(fleet);
        self
    }

    /// Records in the fleet table that this host is alive and what it serves (a no-op
    /// without a fleet).
    pub async fn heartbeat(
        &self,
        host_id: &str,
        api: &str,
        started_at_ms: u64,
    ) -> Result<(), RegistryError> {
        let Some(fleet) = self.fleet.clone() else {
            return Ok(());
        };
        let serving: BTreeMap<String, String> = self
            .serving
            .read()
            .map(|s| {
                s.iter()
                    .map(|(name, c)| (name.clone(), c.digest.as_str().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let (host_id, api) = (host_id.to_string(), api.to_string());
        tokio::task::spawn_blocking(move || fleet.beat(&host_id, &api, started_at_ms, &serving))
            .await
            .map_err(|e| StoreError::Database(format!("heartbeat interrupted: {e}")))??;
        Ok(())
    }

    /// The live hosts of the fleet, `None` without a fleet.
    pub async fn fleet(&self) -> Result<Option<Vec<FleetHost>>, RegistryError> {
        let Some(fleet) = self.fleet.clone() else {
            return Ok(None);
        };
        let hosts = tokio::task::spawn_blocking(move || fleet.live(FLEET_LIVENESS))
            .await
            .map_err(|e| StoreError::Database(format!("fleet read interrupted: {e}")))??;
        Ok(Some(hosts))
    }

    /// The runtime this registry loads components with.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The largest component accepted, in bytes.
    pub fn max_component_bytes(&self) -> usize {
        self.max_component_bytes
    }

    async fn blocking<T: Send + 'static>(
        &self,
        op: impl FnOnce(&dyn RegistryStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, RegistryError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || op(store.as_ref()))
            .await
            .map_err(|e| StoreError::Database(format!("store task failed: {e}")))?
            .map_err(RegistryError::from)
    }

    fn serve(&self, name: &str, served: Served) {
        if let Ok(mut s) = self.serving.write() {
            s.insert(name.to_string(), served);
            metrics::gauge!(metric::SERVED).set(s.len() as f64);
        }
    }

    /// Loads every active version (from the compiled cache when possible). Versions that no
    /// longer load are skipped with an error in the log and listed in the answer.
    pub async fn load_all(&self) -> Result<Vec<RegistryError>, RegistryError> {
        let active = self.blocking(|s| s.active()).await?;
        let mut failures = Vec::new();
        for record in active {
            let name = record.spec.activity_type.clone();
            match self.load_version(&record).await {
                Ok(served) => {
                    let compiled = served.component.as_ref();
                    let cached = compiled.map(|c| c.loaded_from_cache());
                    tracing::info!(activity = name.as_str(), version = %record.digest, ?cached, "activity loaded");
                    self.serve(&name, served);
                }
                Err(e) => {
                    tracing::error!(activity = name.as_str(), error = %e, "active version does not load; the activity is not served");
                    failures.push(e);
                }
            }
        }
        self.sync_trials().await?;
        Ok(failures)
    }

    /// Brings the rollouts this host holds in line with the store: states, and candidates
    /// loaded or dropped. Returns how many activity types changed.
    async fn sync_trials(&self) -> Result<usize, RegistryError> {
        let stored = self.blocking(|s| s.rollouts()).await?;
        let mut changed = 0;
        for (name, state) in &stored {
            let held = self.trials.read().ok().and_then(|t| {
                t.get(name)
                    .map(|t| (t.state, t.candidate.as_ref().map(|c| c.seq)))
            });
            let wanted_seq = state.candidate.map(|c| c.seq);
            if held == Some((*state, wanted_seq)) {
                continue;
            }
            let candidate = match (wanted_seq, held.and_then(|h| h.1)) {
                (Some(seq), held_seq) if held_seq != Some(seq) => {
                    match self.load_seq(name, seq).await {
                        Ok(served) => Some(served),
                        Err(e) => {
                            tracing::error!(activity = name.as_str(), seq, error = %e, "cannot load the candidate; calls go to the active version");
                            None
                        }
                    }
                }
                (Some(_), _) => self
                    .trials
                    .write()
                    .ok()
                    .and_then(|mut t| t.get_mut(name).and_then(|t| t.candidate.take())),
                (None, _) => None,
            };
            self.hold(
                name,
                Some(Trial {
                    state: *state,
                    candidate,
                }),
            );
            changed += 1;
        }
        let gone: Vec<String> = self
            .trials
            .read()
            .map(|t| {
                t.keys()
                    .filter(|name| !stored.contains_key(*name))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for name in &gone {
            self.hold(name, None);
        }
        changed += gone.len();
        if changed > 0 {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        Ok(changed)
    }

    /// Replaces what this host holds of `name`'s rollout, keeping the candidate gauge true.
    fn hold(&self, name: &str, trial: Option<Trial>) {
        let digest_of = |t: &Trial| t.candidate.as_ref().map(|c| c.digest.as_str().to_string());
        let new = trial.as_ref().and_then(digest_of);
        let old = self.trials.write().ok().and_then(|mut t| {
            let old = match trial {
                Some(trial) => t.insert(name.to_string(), trial),
                None => t.remove(name),
            };
            old.as_ref().and_then(digest_of)
        });
        if old != new {
            if let Some(old) = old {
                metrics::gauge!(metric::CANDIDATE_HELD, "activity_type" => name.to_string(), "version" => old).set(0.0);
            }
            if let Some(new) = new {
                metrics::gauge!(metric::CANDIDATE_HELD, "activity_type" => name.to_string(), "version" => new).set(1.0);
            }
        }
    }

    /// Version `seq` of `name`, loaded.
    async fn load_seq(&self, name: &str, seq: u64) -> Result<Served, RegistryError> {
        let n = name.to_string();
        let (versions, _) = self.blocking(move |s| s.versions(&n)).await?;
        let record = versions
            .iter()
            .find(|v| v.seq == seq)
            .ok_or_else(|| RegistryError::NotFound(format!("{name} version {seq}")))?;
        self.load_version(record).await
    }

    /// Records a rollout change in the store, with its metric and log line, and brings
    /// this host's rollouts in line.
    async fn change_rollout(&self, name: &str, change: RolloutChange) -> Result<(), RegistryError> {
        let kind = change.event.kind;
        let (by, reason) = (change.event.by.clone(), change.event.reason.clone());
        let n = name.to_string();
        self.blocking(move |s| s.set_rollout(&n, change)).await?;
        metrics::counter!(metric::ROLLOUT_EVENTS, "activity_type" => name.to_string(), "kind" => format!("{kind:?}").to_lowercase(), "by" => if by == AUTOMATIC_ABORT { AUTOMATIC_ABORT } else { "caller" })
            .increment(1);
        tracing::info!(
            activity = name,
            ?kind,
            by = by.as_str(),
            reason = reason.as_deref().unwrap_or(""),
            "rollout changed"
        );
        if let Ok(mut o) = self.outcomes.lock() {
            o.forget(name);
        }
        self.sync_trials().await?;
        Ok(())
    }

    /// What this host needs of `record`: its stored signature alone on a host that does not
    /// execute (when the record has one), else the compiled component.
    async fn load_version(&self, record: &VersionRecord) -> Result<Served, RegistryError> {
        if let (false, Some(signature)) = (self.executes, &record.signature) {
            return Ok(Served {
                seq: record.seq,
                digest: record.digest.clone(),
                spec: record.spec.clone(),
                signature: Arc::new(signature.clone()),
                component: None,
            });
        }
        let digest = record.digest.clone();
        let stored = |message: String| RegistryError::Stored {
            name: record.spec.activity_type.clone(),
            digest: record.digest.clone(),
            message,
        };
        let bytes = self
            .blocking(move |s| s.blob(&digest))
            .await?
            .ok_or_else(|| stored("its component file is missing".into()))?;
        if ComponentDigest::of(&bytes) != record.digest {
            return Err(stored(
                "its component file does not hash to its digest (torn or altered); \
                 deploy the same component again to repair it"
                    .into(),
            ));
        }
        let component = self
            .runtime
            .load(record.spec.clone(), &bytes)
            .await
            .map_err(|e| stored(e.to_string()))?;
        Ok(Served::compiled(record.seq, component, self.executes))
    }

    /// Validates, compiles, stores and activates a component as activity type `name`.
    pub async fn deploy(
        &self,
        name: &str,
        bytes: Vec<u8>,
        request: DeployRequest,
    ) -> Result<DeployOutcome, RegistryError> {
        let outcome = self.deploy_checked(name, bytes, request).await;
        let label = match &outcome {
            Ok(o) if o.changed => "deployed",
            Ok(_) => "unchanged",
            Err(RegistryError::Store(_)) => "unavailable",
            Err(_) => "refused",
        };
        // An invalid name is a client's text: it never becomes a label value.
        let activity_type = if check_name(name).is_ok() { name } else { "" };
        metrics::counter!(metric::DEPLOYS, "activity_type" => activity_type.to_string(), "outcome" => label)
            .increment(1);
        outcome
    }

    async fn deploy_checked(
        &self,
        name: &str,
        bytes: Vec<u8>,
        request: DeployRequest,
    ) -> Result<DeployOutcome, RegistryError> {
        check_name(name)?;
        if bytes.is_empty() {
            return Err(RegistryError::Empty);
        }
        if bytes.len() > self.max_component_bytes {
            return Err(RegistryError::TooLarge {
                size: bytes.len(),
                limit: self.max_component_bytes,
            });
        }
        let spec = ActivitySpec {
            activity_type: name.to_string(),
            export: request.export,
            grants: request.grants,
            limits: request.limits,
        };
        self.runtime
            .egress()
            .check_grants(&spec.grants)
            .map_err(RegistryError::OutsidePolicy)?;
        if !spec.grants.secrets.is_empty() {
            let held = self.runtime.egress().secret_names();
            if let Some(missing) = spec.grants.secrets.iter().find(|n| !held.contains(*n)) {
                return Err(RegistryError::NoSuchSecret(missing.clone()));
            }
        }
        // Validate and compile before anything changes.
        let component = self.runtime.load(spec.clone(), &bytes).await?;
        let digest = component.digest().clone();
        let _change = self.changes.lock().await;
        let (versions, active) = {
            let name = name.to_string();
            self.blocking(move |s| s.versions(&name)).await?
        };
        if let Some(current) = versions.iter().find(|v| Some(v.seq) == active) {
            if current.digest == digest && current.spec == spec && current.source == request.source
            {
                // The same version again: its file is written again if it no longer hashes
                // to its digest, and it is served if loading it had failed.
                let stored = digest.clone();
                self.blocking(move |s| s.put_blob(&stored, &bytes)).await?;
                if self.get(name).is_none() {
                    self.serve(
                        name,
                        Served::compiled(current.seq, component, self.executes),
                    );
                }
                return Ok(DeployOutcome {
                    changed: false,
                    version: VersionView::of(current, active),
                    policy: request.rollout.unwrap_or(self.rollout.policy),
                    candidate: None,
                });
            }
        }
        let policy = request.rollout.unwrap_or(self.rollout.policy);
        let ramp = request.ramp_percent.unwrap_or(self.rollout.ramp_percent);
        if ramp > 100 {
            return Err(RegistryError::InvalidRamp(ramp.into()));
        }
        // A ramp needs a stable version to ramp from; the first version is simply active.
        let as_candidate = policy == RolloutPolicy::Ramp && active.is_some();
        let previous = {
            let n = name.to_string();
            self.blocking(move |s| s.rollout(&n)).await?
        };
        let record = VersionRecord {
            seq: 0,
            digest: digest.clone(),
            size: bytes.len() as u64,
            deployed_at_ms: now_ms(),
            deployed_by: request.deployed_by.clone(),
            spec,
            source: request.source,
            signature: Some(component.signature().as_ref().clone()),
        };
        let record = {
            let (name, digest) = (name.to_string(), digest.clone());
            self.blocking(move |s| {
                s.put_blob(&digest, &bytes)?;
                s.add_version(&name, record, !as_candidate)
            })
            .await?
        };
        let candidate = as_candidate.then_some(Candidate {
            seq: record.seq,
            ramp_percent: ramp,
        });
        if !as_candidate {
            self.serve(name, Served::compiled(record.seq, component, self.executes));
        }
        self.change_rollout(
            name,
            RolloutChange {
                state: RolloutState { policy, candidate },
                activate: None,
                // A candidate replaced by this deploy: its runs go to the new version.
                unpin: previous.candidate.map(|c| c.seq).into_iter().collect(),
                event: RolloutEvent {
                    kind: EventKind::Deploy,
                    at_ms: record.deployed_at_ms,
                    by: request.deployed_by,
                    reason: None,
                    digest: Some(digest.clone()),
                    ramp_percent: candidate.map(|c| c.ramp_percent),
                },
            },
        )
        .await?;
        tracing::info!(activity = name, version = %digest, seq = record.seq, policy = policy.as_str(), candidate = as_candidate, "deployed");
        // What is active now: the new version, or (a candidate) the one read before the write.
        let version = match versions.iter().find(|v| Some(v.seq) == active) {
            Some(stable) if as_candidate => VersionView::of(stable, active),
            _ => VersionView::of(&record, Some(record.seq)),
        };
        Ok(DeployOutcome {
            changed: true,
            version,
            policy,
            candidate: candidate.map(|c| CandidateView::of(&record, c.ramp_percent)),
        })
    }

    /// The candidate of `name`, or [`RegistryError::NoCandidate`].
    async fn candidate_of(&self, name: &str) -> Result<(RolloutState, Candidate), RegistryError> {
        check_name(name)?;
        let n = name.to_string();
        let state = self.blocking(move |s| s.rollout(&n)).await?;
        match state.candidate {
            Some(c) => Ok((state, c)),
            None => {
                let n = name.to_string();
                let (versions, _) = self.blocking(move |s| s.versions(&n)).await?;
                Err(if versions.is_empty() {
                    RegistryError::NotFound(name.to_string())
                } else {
                    RegistryError::NoCandidate(name.to_string())
                })
            }
        }
    }

    /// Gives the candidate of `name` `percent` of runs (runs already pinned keep theirs).
    pub async fn ramp(&self, name: &str, percent: u64, by: &str) -> Result<(), RegistryError> {
        if percent > 100 {
            return Err(RegistryError::InvalidRamp(percent));
        }
        let _change = self.changes.lock().await;
        let (state, candidate) = self.candidate_of(name).await?;
        let candidate = Candidate {
            ramp_percent: percent as u8,
            ..candidate
        };
        let digest = self.digest_of(name, candidate.seq).await?;
        self.change_rollout(
            name,
            RolloutChange {
                state: RolloutState {
                    candidate: Some(candidate),
                    ..state
                },
                activate: None,
                unpin: Vec::new(),
                event: RolloutEvent {
                    kind: EventKind::Ramp,
                    at_ms: now_ms(),
                    by: by.to_string(),
                    reason: None,
                    digest: Some(digest),
                    ramp_percent: Some(candidate.ramp_percent),
                },
            },
        )
        .await
    }

    /// Makes the candidate of `name` active for all runs (runs pinned to the earlier
    /// version keep it).
    pub async fn promote(&self, name: &str, by: &str) -> Result<VersionView, RegistryError> {
        let _change = self.changes.lock().await;
        let (state, candidate) = self.candidate_of(name).await?;
        let served = self.load_seq(name, candidate.seq).await?;
        let digest = served.digest.clone();
        self.change_rollout(
            name,
            RolloutChange {
                state: RolloutState {
                    candidate: None,
                    ..state
                },
                activate: Some(candidate.seq),
                unpin: Vec::new(),
                event: RolloutEvent {
                    kind: EventKind::Promote,
                    at_ms: now_ms(),
                    by: by.to_string(),
                    reason: None,
                    digest: Some(digest),
                    ramp_percent: None,
                },
            },
        )
        .await?;
        self.serve(name, served);
        self.generation.fetch_add(1, Ordering::SeqCst);
        let n = name.to_string();
        let (versions, active) = self.blocking(move |s| s.versions(&n)).await?;
        versions
            .iter()
            .find(|v| v.seq == candidate.seq)
            .map(|v| VersionView::of(v, active))
            .ok_or_else(|| RegistryError::NotFound(name.to_string()))
    }

    /// Drops the candidate of `name`: every later call, retries included, goes to the
    /// active version; calls running on the candidate finish.
    pub async fn abort(
        &self,
        name: &str,
        by: &str,
        reason: Option<String>,
    ) -> Result<(), RegistryError> {
        self.abort_candidate(name, by, reason, None).await
    }

    /// Aborts the candidate of `name`; with `only`, only when it is still that version.
    async fn abort_candidate(
        &self,
        name: &str,
        by: &str,
        reason: Option<String>,
        only: Option<u64>,
    ) -> Result<(), RegistryError> {
        let _change = self.changes.lock().await;
        let (state, candidate) = self.candidate_of(name).await?;
        if only.is_some_and(|seq| seq != candidate.seq) {
            return Ok(());
        }
        let digest = self.digest_of(name, candidate.seq).await?;
        if by == AUTOMATIC_ABORT {
            tracing::warn!(activity = name, version = %digest, reason = reason.as_deref().unwrap_or(""), "candidate aborted automatically");
        }
        self.change_rollout(
            name,
            RolloutChange {
                state: RolloutState {
                    candidate: None,
                    ..state
                },
                activate: None,
                unpin: vec![candidate.seq],
                event: RolloutEvent {
                    kind: EventKind::Abort,
                    at_ms: now_ms(),
                    by: by.to_string(),
                    reason,
                    digest: Some(digest),
                    ramp_percent: None,
                },
            },
        )
        .await
    }

    async fn digest_of(&self, name: &str, seq: u64) -> Result<ComponentDigest, RegistryError> {
        let n = name.to_string();
        let (versions, _) = self.blocking(move |s| s.versions(&n)).await?;
        versions
            .into_iter()
            .find(|v| v.seq == seq)
            .map(|v| v.digest)
            .ok_or_else(|| RegistryError::NotFound(name.to_string()))
    }

    /// Makes an earlier version active: the one before the active version, or the latest
    /// version with `digest`.
    pub async fn rollback(
        &self,
        name: &str,
        digest: Option<&str>,
        by: &str,
    ) -> Result<VersionView, RegistryError> {
        check_name(name)?;
        let _change = self.changes.lock().await;
        let (versions, active) = {
            let name = name.to_string();
            self.blocking(move |s| s.versions(&name)).await?
        };
        let Some(active_seq) = active else {
            return Err(RegistryError::NotFound(name.to_string()));
        };
        let current = versions.iter().find(|v| v.seq == active_seq);
        let target = match digest {
            Some(d) => versions
                .iter()
                .rev()
                .find(|v| v.digest.as_str() == d || v.digest.hex() == d)
                .ok_or_else(|| RegistryError::VersionNotFound {
                    name: name.into(),
                    digest: d.into(),
                })?,
            None => versions
                .iter()
                .rev()
                // The latest earlier version that differs: in its code or its settings.
                .find(|v| {
                    v.seq < active_seq
                        && current.is_none_or(|c| c.digest != v.digest || c.spec != v.spec)
                })
                .ok_or_else(|| RegistryError::NoEarlierVersion(name.into()))?,
        };
        let served = self.load_version(target).await?;
        let seq = target.seq;
        let state = {
            let n = name.to_string();
            self.blocking(move |s| s.rollout(&n)).await?
        };
        self.change_rollout(
            name,
            RolloutChange {
                // A rollback ends a ramp: its candidate goes too.
                state: RolloutState {
                    policy: state.policy,
                    candidate: None,
                },
                activate: Some(seq),
                // Runs pinned to the version rolled back from (or the candidate) follow.
                unpin: std::iter::once(active_seq)
                    .chain(state.candidate.map(|c| c.seq))
                    .collect(),
                event: RolloutEvent {
                    kind: EventKind::Rollback,
                    at_ms: now_ms(),
                    by: by.to_string(),
                    reason: None,
                    digest: Some(target.digest.clone()),
                    ramp_percent: None,
                },
            },
        )
        .await?;
        self.serve(name, served);
        self.generation.fetch_add(1, Ordering::SeqCst);
        tracing::info!(activity = name, version = %target.digest, seq, "rolled back");
        metrics::counter!(metric::ROLLBACKS, "activity_type" => name.to_string()).increment(1);
        Ok(VersionView::of(target, Some(target.seq)))
    }

    /// Stops serving `name` and forgets its history.
    pub async fn remove(&self, name: &str) -> Result<(), RegistryError> {
        check_name(name)?;
        let _change = self.changes.lock().await;
        let n = name.to_string();
        if !self.blocking(move |s| s.remove(&n)).await? {
            return Err(RegistryError::NotFound(name.to_string()));
        }
        if let Ok(mut s) = self.serving.write() {
            s.remove(name);
            metrics::gauge!(metric::SERVED).set(s.len() as f64);
        }
        self.hold(name, None);
        self.generation.fetch_add(1, Ordering::SeqCst);
        tracing::info!(activity = name, "removed");
        Ok(())
    }

    /// Every activity type with its active version.
    pub async fn list(&self) -> Result<Vec<ActivitySummary>, RegistryError> {
        let active = self.blocking(|s| s.active()).await?;
        Ok(active
            .into_iter()
            .map(|r| ActivitySummary {
                name: r.spec.activity_type,
                active_digest: r.digest,
                active_seq: r.seq,
                deployed_at_ms: r.deployed_at_ms,
            })
            .collect())
    }

    /// Brings the served components in line with the store: versions activated or removed
    /// by another process (another host's API, say) are loaded or dropped. Returns how many
    /// activity types changed.
    pub async fn reconcile(&self) -> Result<usize, RegistryError> {
        self.reload_secrets().await;
        let _change = self.changes.lock().await;
        let active = self.blocking(|s| s.active()).await?;
        let mut changed = 0;
        for record in &active {
            let name = record.spec.activity_type.as_str();
            let same = self.serving.read().is_ok_and(|s| {
                s.get(name).is_some_and(|c| {
                    c.seq == record.seq && c.digest == record.digest && c.spec == record.spec
                })
            });
            if same {
                continue;
            }
            match self.load_version(record).await {
                Ok(served) => {
                    tracing::info!(activity = name, version = %record.digest, "activated by another host");
                    self.serve(name, served);
                    changed += 1;
                }
                Err(e) => {
                    tracing::error!(activity = name, error = %e, "cannot load the version another host activated")
                }
            }
        }
        if let Ok(mut serving) = self.serving.write() {
            let before = serving.len();
            serving.retain(|name, _| active.iter().any(|r| &r.spec.activity_type == name));
            changed += before - serving.len();
        }
        if changed > 0 {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        changed += self.sync_trials().await?;
        self.sweep_pins().await;
        Ok(changed)
    }

    /// Drops expired pins, at most once a [`SWEEP_EVERY`].
    async fn sweep_pins(&self) {
        let due = self.last_sweep.lock().is_ok_and(|mut last| {
            let due = last.is_none_or(|at| at.elapsed() >= SWEEP_EVERY);
            if due {
                *last = Some(Instant::now());
            }
            due
        });
        if due {
            let _ = self.sweep_pins_now().await;
        }
    }

    /// Drops pins older than `registry.rollout.pin_ttl_ms` now; returns how many.
    pub async fn sweep_pins_now(&self) -> Result<u64, RegistryError> {
        let before = now_ms().saturating_sub(self.rollout.pin_ttl_ms);
        let swept = self.blocking(move |s| s.sweep_pins(before)).await;
        match &swept {
            Ok(0) => {}
            Ok(n) => tracing::info!(pins = n, "expired pins dropped"),
            Err(e) => tracing::warn!(error = %e, "cannot sweep expired pins"),
        }
        swept
    }

    /// One activity type with its history.
    pub async fn details(&self, name: &str) -> Result<ActivityDetails, RegistryError> {
        check_name(name)?;
        let n = name.to_string();
        let (versions, active) = self.blocking(move |s| s.versions(&n)).await?;
        if versions.is_empty() {
            return Err(RegistryError::NotFound(name.to_string()));
        }
        let hosts = match self.fleet().await {
            Ok(hosts) => hosts.map(|hosts| {
                hosts
                    .into_iter()
                    .map(|h| HostServing {
                        digest: h.serving.get(name).cloned(),
                        host_id: h.host_id,
                        api: h.api,
                        last_seen_ms_ago: h.last_seen_ms_ago,
                    })
                    .collect()
            }),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the fleet's hosts");
                None
            }
        };
        let serving_digest = self.signature(name).map(|(digest, _)| digest);
        let n = name.to_string();
        let (state, events, pins) = self
            .blocking(move |s| {
                Ok((
                    s.rollout(&n)?,
                    s.events(&n, EVENTS_SHOWN)?,
                    s.pin_count(&n)?,
                ))
            })
            .await?;
        let candidate = state.candidate.and_then(|c| {
            versions
                .iter()
                .find(|v| v.seq == c.seq)
                .map(|v| CandidateView::of(v, c.ramp_percent))
        });
        Ok(ActivityDetails {
            hosts,
            serving_digest,
            policy: state.policy,
            candidate,
            serving_candidate: self.trials.read().ok().and_then(|t| {
                t.get(name)
                    .and_then(|t| t.candidate.as_ref())
                    .map(|c| c.digest.clone())
            }),
            events,
            pins,
            name: name.to_string(),
            active_digest: versions
                .iter()
                .find(|v| Some(v.seq) == active)
                .map(|v| v.digest.clone()),
            versions: versions
                .iter()
                .map(|v| VersionView::of(v, active))
                .collect(),
        })
    }
}

impl ActivityCatalog for Registry {
    fn get(&self, activity_type: &str) -> Option<Arc<ActivityComponent>> {
        self.serving
            .read()
            .ok()?
            .get(activity_type)?
            .component
            .clone()
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
    ) -> CatalogFuture<'a, Option<Arc<ActivityComponent>>> {
        Box::pin(self.resolve_call(activity_type, key))
    }

    fn finished<'a>(
        &'a self,
        activity_type: &'a str,
        digest: &'a ComponentDigest,
        failure: Option<&'a ActivityFailure>,
    ) -> CatalogFuture<'a, ()> {
        Box::pin(self.count_call(activity_type, digest, failure))
    }
}

/// How a call's version was chosen, for the metric.
fn role_label(is_candidate: bool, is_active: bool) -> &'static str {
    match (is_candidate, is_active) {
        (true, _) => "candidate",
        (false, true) => "active",
        (false, false) => "pinned",
    }
}

impl Registry {
    /// The version one call runs: with no rollout, the active one; else the run's pin, or
    /// (for a run's first call of the type) the ramp's choice, pinned when the policy pins.
    async fn resolve_call(&self, name: &str, key: &CallKey) -> Option<Arc<ActivityComponent>> {
        let (active_seq, active) = {
            let serving = self.serving.read().ok()?;
            let served = serving.get(name)?;
            (served.seq, served.component.clone())
        };
        let (state, candidate) = match self.trials.read().ok()?.get(name) {
            Some(t) => (
                t.state,
                t.candidate
                    .as_ref()
                    .map(|c| (c.seq, c.digest.clone(), c.component.clone())),
            ),
            None => return active,
        };
        if !state.policy.pins() && candidate.is_none() {
            return active;
        }
        let ramp_key = key.workflow_id.as_deref().unwrap_or(&key.activity_id);
        // The candidate, or `None`: the active version (the store's, for a pin: a host that
        // has not caught up with a deploy yet must not pin new runs to the old version).
        let chosen = match (&candidate, state.candidate) {
            (Some((seq, digest, _)), Some(c))
                if rollout::in_ramp(digest, ramp_key, c.ramp_percent) =>
            {
                Some(*seq)
            }
            _ => None,
        };
        let seq = if state.policy.pins() {
            self.pinned(name, key, chosen).await.unwrap_or(active_seq)
        } else {
            chosen.unwrap_or(active_seq)
        };
        if seq == active_seq {
            return active;
        }
        if let Some((cseq, _, component)) = &candidate {
            if *cseq == seq {
                return component.clone();
            }
        }
        match self.older_version(name, seq).await {
            Some(component) => Some(component),
            None => active,
        }
    }

    /// The version `key`'s run is pinned to, pinning it to `chosen` (`None`: the store's
    /// active version) when it has none yet. When the store cannot be reached the call goes
    /// to `chosen`, with a warning.
    async fn pinned(&self, name: &str, key: &CallKey, chosen: Option<u64>) -> Option<u64> {
        let pin_key = rollout::pin_key(
            key.workflow_id.as_deref(),
            key.run_id.as_deref(),
            &key.activity_id,
        );
        let generation = self.generation.load(Ordering::SeqCst);
        let cache_key = (name.to_string(), generation, pin_key.clone());
        if let Some(seq) = self
            .pins
            .lock()
            .ok()
            .and_then(|mut p| p.get(&cache_key).copied())
        {
            return Some(seq);
        }
        let n = name.to_string();
        match self
            .blocking(move |s| s.pin(&n, &pin_key, chosen, now_ms()))
            .await
        {
            Ok(seq) => {
                if let Ok(mut p) = self.pins.lock() {
                    p.put(cache_key, seq);
                }
                Some(seq)
            }
            Err(e) => {
                tracing::warn!(activity = name, error = %e, "cannot read or write the run's pin; using the rollout's choice");
                chosen
            }
        }
    }

    /// A version that is neither active nor the candidate, for a run pinned to it.
    async fn older_version(&self, name: &str, seq: u64) -> Option<Arc<ActivityComponent>> {
        let key = (name.to_string(), seq);
        if let Some(c) = self
            .older
            .lock()
            .ok()
            .and_then(|mut o| o.get(&key).cloned())
        {
            return Some(c);
        }
        match self.load_seq(name, seq).await {
            Ok(Served {
                component: Some(component),
                ..
            }) => {
                if let Ok(mut o) = self.older.lock() {
                    o.put(key, component.clone());
                }
                Some(component)
            }
            Ok(_) => None,
            Err(e) => {
                tracing::error!(activity = name, seq, error = %e, "cannot load the version a run is pinned to; using the active one");
                None
            }
        }
    }

    /// Counts a call for the rollout metric and, for a candidate, the automatic abort.
    async fn count_call(
        &self,
        name: &str,
        digest: &ComponentDigest,
        failure: Option<&ActivityFailure>,
    ) {
        let is_active = self
            .serving
            .read()
            .is_ok_and(|s| s.get(name).is_some_and(|a| &a.digest == digest));
        let candidate_seq = self.trials.read().ok().and_then(|t| {
            t.get(name)
                .and_then(|t| t.candidate.as_ref())
                .filter(|c| &c.digest == digest)
                .map(|c| c.seq)
        });
        metrics::counter!(
            metric::ROLLOUT_CALLS,
            "activity_type" => name.to_string(),
            "version" => digest.as_str().to_string(),
            "role" => role_label(candidate_seq.is_some(), is_active),
            "outcome" => if failure.is_some() { "failed" } else { "ok" }
        )
        .increment(1);
        let Some(seq) = candidate_seq else { return };
        let failed = failure.is_some_and(rollout::counts_against_candidate);
        let reason = self
            .outcomes
            .lock()
            .ok()
            .and_then(|mut o| o.record(name, seq, failed, &self.rollout.auto_abort));
        if let Some(reason) = reason {
            match self
                .abort_candidate(name, AUTOMATIC_ABORT, Some(reason), Some(seq))
                .await
            {
                Ok(()) | Err(RegistryError::NoCandidate(_)) => {}
                Err(e) => tracing::error!(activity = name, error = %e, "automatic abort failed"),
            }
        }
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
