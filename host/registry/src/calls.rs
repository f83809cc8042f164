//! One call's version: the active one, the run's pin, or a ramp's candidate; and each call
//! counted for the rollout metric and the automatic abort.

use std::sync::atomic::Ordering;

use activity_runtime::{CallKey, Finished, Resolved, Unresolved};

use crate::{metric, now_ms, rollout, Registry, RegistryError, AUTOMATIC_ABORT};

fn unavailable(why: &str) -> Unresolved {
    Unresolved::Unavailable(why.to_string())
}

/// Which version a call ran, for the metric's `role` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallRole {
    /// The ramp's candidate.
    Candidate,
    /// The active version.
    Active,
    /// An older version a run is pinned to.
    Pinned,
}

impl CallRole {
    fn of(is_candidate: bool, is_active: bool) -> Self {
        match (is_candidate, is_active) {
            (true, _) => Self::Candidate,
            (false, true) => Self::Active,
            (false, false) => Self::Pinned,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Candidate => "candidate",
            Self::Active => "active",
            Self::Pinned => "pinned",
        }
    }
}

impl Registry {
    /// The version one call runs: with no rollout, the active one; else the run's pin, or
    /// (for a run's first call of the type) the ramp's choice, pinned when the policy pins.
    /// A run whose version cannot be known or loaded now is answered
    /// [`Unresolved::Unavailable`], never another version.
    pub(crate) async fn resolve_call(&self, name: &str, key: &CallKey) -> Resolved {
        let (active_seq, active) = {
            let serving = self
                .serving
                .read()
                .map_err(|_| unavailable("lock poisoned"))?;
            let served = serving.get(name).ok_or(Unresolved::NotDeployed)?;
            (served.seq, served.loadable(self.executes))
        };
        let held = self.rollouts.held.read().ok().and_then(|held| {
            held.get(name).map(|t| {
                (
                    t.state,
                    t.candidate
                        .as_ref()
                        .map(|c| (c.seq, c.digest.clone(), c.component())),
                )
            })
        });
        let Some((state, candidate)) = held else {
            return self.materialize(name, active).await;
        };
        if !state.policy.pins() && candidate.is_none() {
            return self.materialize(name, active).await;
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
            self.pinned(name, key, chosen).await?.unwrap_or(active_seq)
        } else {
            chosen.unwrap_or(active_seq)
        };
        if seq == active_seq {
            return self.materialize(name, active).await;
        }
        if let Some((cseq, _, component)) = &candidate {
            if *cseq == seq {
                return component.clone().ok_or(Unresolved::NotDeployed);
            }
        }
        self.older_version(name, seq).await
    }

    /// The version `key`'s run is pinned to (`None`: the store's active version), pinning it
    /// to `chosen` when it has none yet. Pins are cached per host; when the store cannot be
    /// reached, a pin cached before the latest change still answers (pins change only by an
    /// abort or a rollback), and a run with none cached is [`Unresolved::Unavailable`].
    async fn pinned(
        &self,
        name: &str,
        key: &CallKey,
        chosen: Option<u64>,
    ) -> Result<Option<u64>, Unresolved> {
        let pin_key = rollout::pin_key(
            key.workflow_id.as_deref(),
            key.run_id.as_deref(),
            &key.activity_id,
        );
        let generation = self.rollouts.generation.load(Ordering::SeqCst);
        let cache_key = (name.to_string(), pin_key.clone());
        let cached = self
            .rollouts
            .pins
            .lock()
            .ok()
            .and_then(|mut p| p.get(&cache_key).copied());
        if let Some((at, seq)) = cached {
            if at == generation {
                return Ok(Some(seq));
            }
        }
        let n = name.to_string();
        match self
            .blocking(move |s| s.pin(&n, &pin_key, chosen, now_ms()))
            .await
        {
            Ok(seq) => {
                if let Ok(mut p) = self.rollouts.pins.lock() {
                    p.put(cache_key, (generation, seq));
                }
                Ok(Some(seq))
            }
            Err(e) => match cached {
                Some((_, seq)) => {
                    tracing::warn!(activity = name, seq, error = %e, "cannot read the run's pin; using the one this host read before");
                    Ok(Some(seq))
                }
                None => {
                    tracing::warn!(activity = name, error = %e, "cannot read or write the run's pin; the call is retried");
                    Err(unavailable(&format!(
                        "the registry's store cannot say which version this run is pinned to: {e}"
                    )))
                }
            },
        }
    }

    /// A version that is neither active nor the candidate, for a run pinned to it.
    async fn older_version(&self, name: &str, seq: u64) -> Resolved {
        let key = (name.to_string(), seq);
        if let Some(c) = self
            .rollouts
            .older
            .lock()
            .ok()
            .and_then(|mut o| o.get(&key).cloned())
        {
            return Ok(c);
        }
        match self.load_seq(name, seq).await.map(|held| held.component()) {
            Ok(Some(component)) => {
                if let Ok(mut o) = self.rollouts.older.lock() {
                    o.put(key, component.clone());
                }
                Ok(component)
            }
            Ok(None) => Err(Unresolved::NotDeployed),
            Err(e) => {
                tracing::error!(activity = name, seq, error = %e, "cannot load the version a run is pinned to; the call is retried");
                Err(unavailable(&format!(
                    "version {seq}, which this run is pinned to, does not load: {e}"
                )))
            }
        }
    }

    /// Counts a call for the ledger, the rollout metric and, for a candidate, the
    /// automatic abort (on this host's calls and the fleet's).
    pub(crate) async fn count_call(&self, call: Finished<'_>) {
        let (name, digest, failure) = (call.activity_type, call.digest, call.failure);
        self.count_usage(
            name,
            digest.as_str(),
            call.caller,
            call.usage,
            failure.is_some(),
        );
        let is_active = self
            .serving
            .read()
            .is_ok_and(|s| s.get(name).is_some_and(|a| &a.digest == digest));
        let candidate_seq = self.rollouts.held.read().ok().and_then(|t| {
            t.get(name)
                .and_then(|t| t.candidate.as_ref())
                .filter(|c| &c.digest == digest)
                .map(|c| c.seq)
        });
        metrics::counter!(
            metric::ROLLOUT_CALLS,
            "activity_type" => name.to_string(),
            "version" => digest.as_str().to_string(),
            "role" => CallRole::of(candidate_seq.is_some(), is_active).as_str(),
            "outcome" => if failure.is_some() { "failed" } else { "ok" }
        )
        .increment(1);
        let Some(seq) = candidate_seq else { return };
        let failed = failure.is_some_and(rollout::counts_against_candidate);
        let rule = self.rollouts.settings.auto_abort;
        let (calls, failures) = self
            .rollouts
            .outcomes
            .lock()
            .map(|mut o| o.record(name, seq, failed, rule.window_ms))
            .unwrap_or((0, 0));
        let (elsewhere_calls, elsewhere_failures) = self.count_outcome(name, seq, failed);
        let reason = rule.verdict(calls + elsewhere_calls, failures + elsewhere_failures);
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
