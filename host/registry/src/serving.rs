//! What a host serves: the version of each activity type calls get when no rollout says
//! otherwise, loaded from the store on start and kept in line with it.

use std::sync::Arc;

use activity_runtime::{ActivityComponent, ActivitySpec, ComponentDigest, Signature};

use crate::views::HostServing;
use crate::{
    check_name, metric, ActivityDetails, ActivitySummary, CandidateView, Registry, RegistryError,
    VersionRecord, VersionView,
};

/// Events shown with an activity type.
const EVENTS_SHOWN: usize = 20;

/// What this host holds of a version: the active one, or a candidate.
pub(crate) struct HeldVersion {
    pub(crate) seq: u64,
    pub(crate) digest: ComponentDigest,
    pub(crate) spec: ActivitySpec,
    pub(crate) signature: Arc<Signature>,
    /// The compiled component; `None` on a host that only checks calls (the `server` role).
    pub(crate) component: Option<Arc<ActivityComponent>>,
}

impl HeldVersion {
    pub(crate) fn compiled(seq: u64, component: ActivityComponent, keep: bool) -> Self {
        Self {
            seq,
            digest: component.digest().clone(),
            spec: component.spec().clone(),
            signature: component.signature().clone(),
            component: keep.then(|| Arc::new(component)),
        }
    }
}

impl Registry {
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

    pub(crate) fn serve(&self, name: &str, served: HeldVersion) {
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
        self.sync_rollouts().await?;
        Ok(failures)
    }

    /// Version `seq` of `name`, loaded.
    pub(crate) async fn load_seq(
        &self,
        name: &str,
        seq: u64,
    ) -> Result<HeldVersion, RegistryError> {
        let n = name.to_string();
        let (versions, _) = self.blocking(move |s| s.versions(&n)).await?;
        let record = versions
            .iter()
            .find(|v| v.seq == seq)
            .ok_or_else(|| RegistryError::NotFound(format!("{name} version {seq}")))?;
        self.load_version(record).await
    }

    /// What this host needs of `record`: its stored signature alone on a host that does not
    /// execute (when the record has one), else the compiled component.
    pub(crate) async fn load_version(
        &self,
        record: &VersionRecord,
    ) -> Result<HeldVersion, RegistryError> {
        if let (false, Some(signature)) = (self.executes, &record.signature) {
            return Ok(HeldVersion {
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
        Ok(HeldVersion::compiled(record.seq, component, self.executes))
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
            self.rollouts.changed();
        }
        changed += self.sync_rollouts().await?;
        self.sweep_pins().await;
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
            serving_candidate: self.rollouts.held.read().ok().and_then(|t| {
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
