//! A host's part of the ledger: each call counted in memory, added to the store every
//! `registry.usage.flush_ms`, and the candidates' outcomes on the other hosts read back, so
//! the automatic abort decides on the whole fleet's calls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::ledger::{LedgerStore, Unwritten, UsageGroup, UsageSettings, UsageTotal};
use crate::{now_ms, off_thread, Registry, RegistryError, StoreError, AUTOMATIC_ABORT};

/// Outcomes older than this are swept (longer than any sensible abort window).
const OUTCOMES_KEPT_MS: u64 = 24 * 3600 * 1000;

/// The ledger of one host.
pub(crate) struct HostLedger {
    store: Arc<dyn LedgerStore>,
    host_id: String,
    pub(crate) settings: UsageSettings,
    unwritten: Mutex<Unwritten>,
    /// (activity type, candidate seq) -> (calls, failures) on the other hosts, in the
    /// window, as last read.
    elsewhere: Mutex<HashMap<(String, u64), (u64, u64)>>,
}

impl Registry {
    /// Keeps what every call cost in `store` (as `host_id`), and decides the automatic abort
    /// on the candidate's calls on every host of that store.
    pub fn with_ledger(
        mut self,
        store: Arc<dyn LedgerStore>,
        host_id: impl Into<String>,
        settings: UsageSettings,
    ) -> Self {
        self.ledger = Some(HostLedger {
            store,
            host_id: host_id.into(),
            settings,
            unwritten: Mutex::default(),
            elsewhere: Mutex::default(),
        });
        self
    }

    /// Counts one call's cost for the ledger (a no-op without one).
    pub(crate) fn count_usage(
        &self,
        activity: &str,
        version: &str,
        caller: &str,
        usage: &activity_runtime::Usage,
        failed: bool,
    ) {
        if let Some(mut u) = self.ledger.as_ref().and_then(|l| l.unwritten.lock().ok()) {
            u.call(now_ms(), activity, version, caller, usage, failed);
        }
    }

    /// Counts one call of candidate `seq` for the fleet's abort window; returns the calls
    /// and failures of the other hosts in it, as last read.
    pub(crate) fn count_outcome(&self, activity: &str, seq: u64, failed: bool) -> (u64, u64) {
        let Some(ledger) = &self.ledger else {
            return (0, 0);
        };
        if let Ok(mut u) = ledger.unwritten.lock() {
            u.outcome(now_ms(), activity, seq, failed);
        }
        ledger
            .elsewhere
            .lock()
            .ok()
            .and_then(|e| e.get(&(activity.to_string(), seq)).copied())
            .unwrap_or((0, 0))
    }

    /// Adds what this host counted to the store, reads the candidates' outcomes on the
    /// other hosts, and aborts a candidate the fleet's calls condemn. What cannot be written
    /// is kept for the next flush.
    pub async fn flush_ledger(&self) -> Result<(), RegistryError> {
        let Some(ledger) = &self.ledger else {
            return Ok(());
        };
        let (usage, outcomes) = match ledger.unwritten.lock() {
            Ok(mut u) if !u.is_empty() => u.take(),
            _ => (Vec::new(), Vec::new()),
        };
        let candidates: Vec<(String, u64)> = self
            .rollouts
            .held
            .read()
            .map(|h| {
                h.iter()
                    .filter_map(|(name, r)| r.candidate.as_ref().map(|c| (name.clone(), c.seq)))
                    .collect()
            })
            .unwrap_or_default();
        if usage.is_empty() && outcomes.is_empty() && candidates.is_empty() {
            // Nothing to write and no candidate to judge: no store round trip.
            return Ok(());
        }
        let (store, host_id) = (ledger.store.clone(), ledger.host_id.clone());
        let window_ms = self.rollouts.settings.auto_abort.window_ms;
        let since = now_ms().saturating_sub(window_ms);
        let read_elsewhere = !candidates.is_empty();
        let written = tokio::task::spawn_blocking(move || {
            let wrote = (|| {
                if !usage.is_empty() {
                    store.add_usage(&usage)?;
                }
                if !outcomes.is_empty() {
                    store.add_outcomes(&host_id, &outcomes)?;
                }
                Ok::<_, StoreError>(())
            })();
            let elsewhere = if read_elsewhere {
                Some(store.outcomes_elsewhere(&host_id, since))
            } else {
                None
            };
            (wrote.map_err(|e| (e, usage, outcomes)), elsewhere)
        })
        .await
        .map_err(|e| StoreError::Database(format!("ledger flush interrupted: {e}")))?;
        let (wrote, elsewhere) = written;
        let result = match wrote {
            Ok(()) => Ok(()),
            Err((e, usage, outcomes)) => {
                if let Ok(mut u) = ledger.unwritten.lock() {
                    u.restore(usage, outcomes);
                }
                Err(RegistryError::from(e))
            }
        };
        match elsewhere {
            Some(Ok(totals)) => {
                let totals: HashMap<(String, u64), (u64, u64)> = totals
                    .into_iter()
                    .map(|t| ((t.activity, t.seq), (t.calls, t.failures)))
                    .collect();
                if let Ok(mut e) = ledger.elsewhere.lock() {
                    e.clone_from(&totals);
                }
                self.judge_candidates(&candidates, &totals).await;
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "cannot read the candidates' outcomes on other hosts")
            }
            None => {}
        }
        result
    }

    /// Aborts each candidate whose calls on this host and elsewhere meet the abort rule.
    async fn judge_candidates(
        &self,
        candidates: &[(String, u64)],
        elsewhere: &HashMap<(String, u64), (u64, u64)>,
    ) {
        let rule = self.rollouts.settings.auto_abort;
        for (name, seq) in candidates {
            let Some(&(calls, failures)) = elsewhere.get(&(name.clone(), *seq)) else {
                continue;
            };
            let (here_calls, here_failures) = self
                .rollouts
                .outcomes
                .lock()
                .map(|mut o| o.totals(name, *seq, rule.window_ms))
                .unwrap_or((0, 0));
            if let Some(reason) = rule.verdict(calls + here_calls, failures + here_failures) {
                match self
                    .abort_candidate(name, AUTOMATIC_ABORT, Some(reason), Some(*seq))
                    .await
                {
                    Ok(()) | Err(RegistryError::NoCandidate(_)) => {}
                    Err(e) => {
                        tracing::error!(activity = name.as_str(), error = %e, "automatic abort failed")
                    }
                }
            }
        }
    }

    /// Usage of the minutes that end after `since_ms`, by `group_by`; only `caller`'s when
    /// given. Every host of the store's fleet answers the same (what each host counted in
    /// its last `registry.usage.flush_ms` is not in it yet).
    pub async fn usage(
        &self,
        since_ms: u64,
        group_by: UsageGroup,
        caller: Option<String>,
    ) -> Result<Vec<UsageTotal>, RegistryError> {
        let Some(ledger) = &self.ledger else {
            return Ok(Vec::new());
        };
        off_thread(ledger.store.clone(), move |s| {
            s.usage(since_ms, group_by, caller.as_deref())
        })
        .await
    }

    /// Drops usage older than `registry.usage.retention_ms` and old candidate outcomes.
    pub(crate) async fn sweep_ledger(&self) {
        let Some(ledger) = &self.ledger else { return };
        let now = now_ms();
        let usage_before = now.saturating_sub(ledger.settings.retention_ms);
        let outcomes_before = now.saturating_sub(OUTCOMES_KEPT_MS);
        match off_thread(ledger.store.clone(), move |s| {
            s.sweep_ledger(usage_before, outcomes_before)
        })
        .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "old usage dropped"),
            Err(e) => tracing::warn!(error = %e, "cannot sweep old usage"),
        }
    }
}
