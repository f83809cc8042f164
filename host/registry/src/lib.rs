//! The module registry: every deployed activity type, its version history and the version
//! that serves it now.
//!
//! A deploy is validated and compiled by the runtime before anything is stored, then the
//! component is stored by digest, the version recorded, and the served component swapped in
//! one step. Calls already running keep the component they started with (they hold an
//! `Arc`). A failed deploy changes nothing.

mod error;
pub mod settings;
pub mod store;
mod views;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use activity_runtime::ActivityCatalog;
use activity_runtime::{ActivityComponent, ActivitySpec, ComponentDigest, Runtime, Signature};

pub use error::RegistryError;
pub use settings::{RegistrySettings, StorageBackend};
pub use store::{
    from_column, to_column, ArtifactSource, FleetHost, FleetStore, RegistryStore, StoreError,
    VersionRecord,
};
pub use views::{
    ActivityDetails, ActivitySummary, DeployOutcome, DeployRequest, HostServing, VersionView,
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
    /// Every metric this crate records.
    pub const ALL: &[&str] = &[DEPLOYS, ROLLBACKS, SERVED];
}

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

/// What this host holds of an activity type's active version.
struct Served {
    digest: ComponentDigest,
    spec: ActivitySpec,
    signature: Arc<Signature>,
    /// The compiled component; `None` on a host that only checks calls (the `server` role).
    component: Option<Arc<ActivityComponent>>,
}

impl Served {
    fn compiled(component: ActivityComponent, keep: bool) -> Self {
        Self {
            digest: component.digest().clone(),
            spec: component.spec().clone(),
            signature: component.signature().clone(),
            component: keep.then(|| Arc::new(component)),
        }
    }
}

/// The registry of one host.
pub struct Registry {
    store: Arc<dyn RegistryStore>,
    runtime: Arc<Runtime>,
    serving: RwLock<BTreeMap<String, Served>>,
    /// False on a host that never runs activities: versions are described from their stored
    /// signatures, not compiled.
    executes: bool,
    /// One change at a time, so history and serving map agree.
    changes: tokio::sync::Mutex<()>,
    max_component_bytes: usize,
    /// The hosts table of a fleet, with a shared store.
    fleet: Option<Arc<dyn FleetStore>>,
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
            executes: true,
            changes: tokio::sync::Mutex::new(()),
            max_component_bytes,
            fleet: None,
        }
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
        Ok(failures)
    }

    /// What this host needs of `record`: its stored signature alone on a host that does not
    /// execute (when the record has one), else the compiled component.
    async fn load_version(&self, record: &VersionRecord) -> Result<Served, RegistryError> {
        if let (false, Some(signature)) = (self.executes, &record.signature) {
            return Ok(Served {
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
        let component = self
            .runtime
            .load(record.spec.clone(), &bytes)
            .await
            .map_err(|e| stored(e.to_string()))?;
        Ok(Served::compiled(component, self.executes))
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
                return Ok(DeployOutcome {
                    changed: false,
                    version: VersionView::of(current, active),
                });
            }
        }
        let record = VersionRecord {
            seq: 0,
            digest: digest.clone(),
            size: bytes.len() as u64,
            deployed_at_ms: now_ms(),
            deployed_by: request.deployed_by,
            spec,
            source: request.source,
            signature: Some(component.signature().as_ref().clone()),
        };
        let record = {
            let (name, digest) = (name.to_string(), digest.clone());
            self.blocking(move |s| {
                s.put_blob(&digest, &bytes)?;
                s.add_version(&name, record)
            })
            .await?
        };
        self.serve(name, Served::compiled(component, self.executes));
        tracing::info!(activity = name, version = %digest, seq = record.seq, "deployed");
        Ok(DeployOutcome {
            changed: true,
            version: VersionView::of(&record, Some(record.seq)),
        })
    }

    /// Makes an earlier version active: the one before the active version, or the latest
    /// version with `digest`.
    pub async fn rollback(
        &self,
        name: &str,
        digest: Option<&str>,
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
        let (n, seq) = (name.to_string(), target.seq);
        self.blocking(move |s| s.set_active(&n, seq)).await?;
        self.serve(name, served);
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
        let _change = self.changes.lock().await;
        let active = self.blocking(|s| s.active()).await?;
        let mut changed = 0;
        for record in &active {
            let name = record.spec.activity_type.as_str();
            let same = self.serving.read().is_ok_and(|s| {
                s.get(name)
                    .is_some_and(|c| c.digest == record.digest && c.spec == record.spec)
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
        Ok(changed)
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
        Ok(ActivityDetails {
            hosts,
            serving_digest,
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
