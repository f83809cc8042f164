//! What a host holds of its activity types' rollouts (each one's state and loaded candidate,
//! cached pins, older versions kept for pinned runs, the automatic abort's window) and the
//! changes to a rollout: ramp, promote, abort, and bringing them in line with the store.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use activity_runtime::{ActivityComponent, ComponentDigest};
use lru::LruCache;

use crate::rollout::{Candidate, EventKind, Outcomes, RolloutEvent, RolloutState};
use crate::serving::HeldVersion;
use crate::{
    check_name, metric, now_ms, settings, Registry, RegistryError, RolloutChange, VersionView,
    AUTOMATIC_ABORT,
};

/// Compiled versions other than the active one and the candidate kept for pinned runs.
const OLDER_VERSIONS_KEPT: usize = 32;
/// Pins remembered on this host (the store holds them all).
const PINS_CACHED: usize = 100_000;
/// How often a host sweeps expired pins (on reconcile).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// What this host holds of one activity type's rollout: its state and its candidate.
#[derive(Default)]
pub(crate) struct HeldRollout {
    pub(crate) state: RolloutState,
    pub(crate) candidate: Option<HeldVersion>,
}

/// The rollout state a host keeps beside the store.
pub(crate) struct Rollouts {
    /// Rollout defaults, the automatic abort and the pins' lifetime.
    pub(crate) settings: settings::RolloutSettings,
    /// Each activity type's rollout as this host last read it.
    pub(crate) held: RwLock<BTreeMap<String, HeldRollout>>,
    /// Bumped on every change of what serves: cached pins of an earlier generation are
    /// read from the store again.
    pub(crate) generation: AtomicU64,
    /// (activity type, pin key) -> (the generation it was read in, version).
    pub(crate) pins: Mutex<LruCache<(String, String), (u64, u64)>>,
    /// Versions neither active nor candidate, compiled for runs pinned to them.
    pub(crate) older: Mutex<LruCache<(String, u64), Arc<ActivityComponent>>>,
    /// The automatic abort's window of candidate outcomes.
    pub(crate) outcomes: Mutex<Outcomes>,
    pub(crate) last_sweep: Mutex<Option<Instant>>,
}

impl Default for Rollouts {
    fn default() -> Self {
        Self {
            settings: settings::RolloutSettings::default(),
            held: RwLock::default(),
            generation: AtomicU64::new(0),
            pins: Mutex::new(LruCache::new(
                NonZeroUsize::new(PINS_CACHED).unwrap_or(NonZeroUsize::MIN),
            )),
            older: Mutex::new(LruCache::new(
                NonZeroUsize::new(OLDER_VERSIONS_KEPT).unwrap_or(NonZeroUsize::MIN),
            )),
            outcomes: Mutex::default(),
            last_sweep: Mutex::new(None),
        }
    }
}

impl Rollouts {
    /// Cached pins of earlier generations are read from the store again.
    pub(crate) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

impl Registry {
    /// Brings the rollouts this host holds in line with the store: states, and candidates
    /// loaded or dropped. Returns how many activity types changed.
    pub(crate) async fn sync_rollouts(&self) -> Result<usize, RegistryError> {
        let stored = self.blocking(|s| s.rollouts()).await?;
        let mut changed = 0;
        for (name, state) in &stored {
            let held = self.rollouts.held.read().ok().and_then(|t| {
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
                    .rollouts
                    .held
                    .write()
                    .ok()
                    .and_then(|mut t| t.get_mut(name).and_then(|t| t.candidate.take())),
                (None, _) => None,
            };
            self.hold_rollout(
                name,
                Some(HeldRollout {
                    state: *state,
                    candidate,
                }),
            );
            changed += 1;
        }
        let gone: Vec<String> = self
            .rollouts
            .held
            .read()
            .map(|t| {
                t.keys()
                    .filter(|name| !stored.contains_key(*name))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for name in &gone {
            self.hold_rollout(name, None);
        }
        changed += gone.len();
        if changed > 0 {
            self.rollouts.changed();
        }
        Ok(changed)
    }

    /// Replaces what this host holds of `name`'s rollout, keeping the candidate gauge true.
    pub(crate) fn hold_rollout(&self, name: &str, trial: Option<HeldRollout>) {
        let digest_of =
            |t: &HeldRollout| t.candidate.as_ref().map(|c| c.digest.as_str().to_string());
        let new = trial.as_ref().and_then(digest_of);
        let old = self.rollouts.held.write().ok().and_then(|mut t| {
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

    /// Records a rollout change in the store, with its metric and log line, and brings
    /// this host's rollouts in line.
    pub(crate) async fn change_rollout(
        &self,
        name: &str,
        change: RolloutChange,
    ) -> Result<(), RegistryError> {
        let event = change.event.clone();
        let n = name.to_string();
        self.blocking(move |s| s.set_rollout(&n, change)).await?;
        self.rollout_changed(name, &event).await
    }

    /// After a rollout change was stored: its metric and log line, the abort window
    /// forgotten, and this host's rollouts brought in line.
    pub(crate) async fn rollout_changed(
        &self,
        name: &str,
        event: &RolloutEvent,
    ) -> Result<(), RegistryError> {
        let kind = event.kind;
        let (by, reason) = (event.by.clone(), event.reason.clone());
        metrics::counter!(metric::ROLLOUT_EVENTS, "activity_type" => name.to_string(), "kind" => format!("{kind:?}").to_lowercase(), "by" => if by == AUTOMATIC_ABORT { AUTOMATIC_ABORT } else { "caller" })
            .increment(1);
        tracing::info!(
            activity = name,
            ?kind,
            by = by.as_str(),
            reason = reason.as_deref().unwrap_or(""),
            "rollout changed"
        );
        if let Ok(mut o) = self.rollouts.outcomes.lock() {
            o.forget(name);
        }
        self.sync_rollouts().await?;
        Ok(())
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
        self.rollouts.changed();
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
    pub(crate) async fn abort_candidate(
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

    /// Drops expired pins, at most once a [`SWEEP_EVERY`].
    pub(crate) async fn sweep_pins(&self) {
        let due = self.rollouts.last_sweep.lock().is_ok_and(|mut last| {
            let due = last.is_none_or(|at| at.elapsed() >= SWEEP_EVERY);
            if due {
                *last = Some(Instant::now());
            }
            due
        });
        if due {
            let _ = self.sweep_pins_now().await;
            self.sweep_ledger().await;
        }
    }

    /// Drops pins older than `registry.rollout.pin_ttl_ms` now; returns how many.
    pub async fn sweep_pins_now(&self) -> Result<u64, RegistryError> {
        let before = now_ms().saturating_sub(self.rollouts.settings.pin_ttl_ms);
        let swept = self.blocking(move |s| s.sweep_pins(before)).await;
        match &swept {
            Ok(0) => {}
            Ok(n) => tracing::info!(pins = n, "expired pins dropped"),
            Err(e) => tracing::warn!(error = %e, "cannot sweep expired pins"),
        }
        swept
    }
}
