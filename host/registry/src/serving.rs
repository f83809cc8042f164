//! What a host serves: the version of each activity type calls get when no rollout says
//! otherwise, loaded from the store on start and kept in line with it.

use std::sync::Arc;

use activity_runtime::Unresolved;
use activity_runtime::{ActivityComponent, ActivitySpec, ComponentDigest, Resolved, Signature};
use futures::StreamExt;
use tokio::sync::OnceCell;

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
    /// The compiled component, once loaded: at a deploy, by the warm-up after a start, or
    /// by the version's first call, whichever comes first. Never on a host that only checks
    /// calls (the `server` role).
    compiled: Arc<OnceCell<Arc<ActivityComponent>>>,
}

/// A held version's compiled component, or what loading it needs.
pub(crate) enum Loadable {
    /// Loaded.
    Ready(Arc<ActivityComponent>),
    /// Not loaded yet.
    Pending(Box<Pending>),
    /// Never loaded on this host (the `server` role).
    Never,
}

/// A version not loaded yet: what [`Registry::materialize`] loads it from.
pub(crate) struct Pending {
    seq: u64,
    digest: ComponentDigest,
    spec: ActivitySpec,
    cell: Arc<OnceCell<Arc<ActivityComponent>>>,
}

impl HeldVersion {
    /// A version just compiled; its component kept when `keep` (a host that executes).
    pub(crate) fn compiled(seq: u64, component: ActivityComponent, keep: bool) -> Self {
        Self {
            seq,
            digest: component.digest().clone(),
            spec: component.spec().clone(),
            signature: component.signature().clone(),
            compiled: Arc::new(OnceCell::new_with(keep.then(|| Arc::new(component)))),
        }
    }

    /// A version known by its stored signature, loaded later (or never).
    fn described(record: &VersionRecord, signature: &Signature) -> Self {
        Self {
            seq: record.seq,
            digest: record.digest.clone(),
            spec: record.spec.clone(),
            signature: Arc::new(signature.clone()),
            compiled: Arc::new(OnceCell::new()),
        }
    }

    /// The compiled component, if loaded.
    pub(crate) fn component(&self) -> Option<Arc<ActivityComponent>> {
        self.compiled.get().cloned()
    }

    /// The compiled component, or what loading it needs on a host that executes.
    pub(crate) fn loadable(&self, executes: bool) -> Loadable {
        match self.compiled.get() {
            Some(c) => Loadable::Ready(c.clone()),
            None if !executes => Loadable::Never,
            None => Loadable::Pending(Box::new(Pending {
                seq: self.seq,
                digest: self.digest.clone(),
                spec: self.spec.clone(),
                cell: self.compiled.clone(),
            })),
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

    /// Serves `served` as `name`'s version. The version it replaces, when loaded, is kept with
    /// the older versions: runs pinned to it go on without loading it again (or reaching the
    /// store).
    pub(crate) fn serve(&self, name: &str, served: HeldVersion) {
        let seq = served.seq;
        let replaced = self.serving.write().ok().and_then(|mut s| {
            let replaced = s.insert(name.to_string(), served);
            metrics::gauge!(metric::SERVED).set(s.len() as f64);
            replaced
        });
        if let Some(previous) = replaced.filter(|p| p.seq != seq) {
            if let (Some(component), Ok(mut older)) =
                (previous.component(), self.rollouts.older.lock())
            {
                older.put((name.to_string(), previous.seq), component);
            }
        }
    }

    /// [`open`](Self::open), then [`warm_up`](Self::warm_up): every active version loaded
    /// (from a compiled cache when possible). Versions that no longer load are not served,
    /// with an error in the log, and listed in the answer.
    pub async fn load_all(&self) -> Result<Vec<RegistryError>, RegistryError> {
        let mut failures = self.open().await?;
        failures.extend(self.warm_up().await);
        Ok(failures)
    }

    /// Serves every active version at once, described by the signature stored with it; each
    /// is loaded by [`warm_up`](Self::warm_up) or by its first call, whichever comes first.
    /// A version stored without a signature is loaded now. Versions that do not load are
    /// not served, with an error in the log, and listed in the answer.
    pub async fn open(&self) -> Result<Vec<RegistryError>, RegistryError> {
        let active = self.blocking(|s| s.active()).await?;
        let mut failures = Vec::new();
        for record in active {
            let name = record.spec.activity_type.clone();
            let held = match (self.check_policy(&record.spec), &record.signature) {
                (Err(e), _) => Err(e),
                (Ok(()), Some(signature)) => Ok(HeldVersion::described(&record, signature)),
                (Ok(()), None) => self.load_version(&record).await,
            };
            match held {
                Ok(held) => self.serve(&name, held),
                Err(e) => {
                    tracing::error!(activity = name.as_str(), error = %e, "active version does not load; the activity is not served");
                    failures.push(e);
                }
            }
        }
        self.sync_rollouts().await?;
        Ok(failures)
    }

    /// Loads every served version not loaded yet, as many at once as the machine has cores
    /// (from this host's compiled cache, else an artifact another host shared, else
    /// compiled). A version that does not load stops being served; the answer says why.
    pub async fn warm_up(&self) -> Vec<RegistryError> {
        let pending: Vec<(String, Box<Pending>)> = self
            .serving
            .read()
            .map(|s| {
                s.iter()
                    .filter_map(|(name, held)| match held.loadable(self.executes) {
                        Loadable::Pending(p) => Some((name.clone(), p)),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let at_once = std::thread::available_parallelism().map_or(2, |n| n.get());
        let loads = futures::stream::iter(pending).map(|(name, pending)| async move {
            let seq = pending.seq;
            (name, seq, self.load_pending(pending).await)
        });
        let mut loads = std::pin::pin!(loads.buffer_unordered(at_once));
        let mut failures = Vec::new();
        while let Some((name, seq, loaded)) = loads.next().await {
            let Err(e) = loaded else { continue };
            tracing::error!(activity = name.as_str(), error = %e, "active version does not load; the activity is not served");
            if let Ok(mut s) = self.serving.write() {
                if s.get(&name).is_some_and(|held| held.seq == seq) {
                    s.remove(&name);
                    metrics::gauge!(metric::SERVED).set(s.len() as f64);
                }
            }
            failures.push(e);
        }
        failures
    }

    /// The component of `loadable`, loading it now if nothing has yet
    /// ([`Unresolved::Unavailable`] when it does not load, with an error in the log).
    pub(crate) async fn materialize(&self, name: &str, loadable: Loadable) -> Resolved {
        match loadable {
            Loadable::Ready(c) => Ok(c),
            Loadable::Never => Err(Unresolved::NotDeployed),
            Loadable::Pending(p) => self.load_pending(p).await.map_err(|e| {
                tracing::error!(activity = name, error = %e, "the version a call needs does not load");
                Unresolved::Unavailable(format!("its version does not load: {e}"))
            }),
        }
    }

    /// Loads a pending version once, however many calls and the warm-up ask at once.
    async fn load_pending(&self, p: Box<Pending>) -> Result<Arc<ActivityComponent>, RegistryError> {
        let component = p
            .cell
            .get_or_try_init(|| async {
                let component = self.compile_stored(&p.spec, &p.digest).await?;
                tracing::info!(activity = p.spec.activity_type.as_str(), version = %p.digest, from = ?component.compiled_from(), "activity loaded");
                Ok::<_, RegistryError>(Arc::new(component))
            })
            .await?;
        Ok(component.clone())
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
        // A policy tightened since the deploy: the version is not served any more.
        self.check_policy(&record.spec)?;
        if let (false, Some(signature)) = (self.executes, &record.signature) {
            return Ok(HeldVersion::described(record, signature));
        }
        let component = self.compile_stored(&record.spec, &record.digest).await?;
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
