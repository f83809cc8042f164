//! Rollouts: how a new version of an activity type reaches calls.
//!
//! - `immediate`: the deployed version is active for the next call everywhere.
//! - `pinned`: a workflow run keeps the version of a type it first used, on every host, for
//!   every later call and retry of that type; runs that first call it after a deploy get the
//!   new version. A standalone activity is pinned by its activity id.
//! - `ramp`: the new version is a *candidate* for a share of runs, chosen from the workflow
//!   id (or activity id) and the candidate's digest, so every host and every retry agree;
//!   `promote` makes it active, `abort` drops it. A ramp pins too, so raising it or promoting
//!   never moves a run that already called the type to another version.
//!
//! Pins live in the registry store (first writer wins, so hosts agree) and are swept after
//! `registry.rollout.pin_ttl_ms`; pins to an aborted or rolled-back-from version are dropped.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use activity_runtime::{ActivityFailure, ComponentDigest};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How a deploy reaches calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RolloutPolicy {
    /// Active for the next call everywhere.
    #[default]
    Immediate,
    /// Runs keep the version they first used; new runs get the new one.
    Pinned,
    /// A candidate for a share of runs until promoted or aborted; pins like `pinned`.
    Ramp,
}

impl RolloutPolicy {
    /// True when runs keep the version they first used.
    pub fn pins(self) -> bool {
        !matches!(self, RolloutPolicy::Immediate)
    }

    /// The policy's name as written in queries and the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutPolicy::Immediate => "immediate",
            RolloutPolicy::Pinned => "pinned",
            RolloutPolicy::Ramp => "ramp",
        }
    }
}

impl std::str::FromStr for RolloutPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "immediate" => Ok(Self::Immediate),
            "pinned" => Ok(Self::Pinned),
            "ramp" => Ok(Self::Ramp),
            other => Err(format!(
                "unknown rollout {other:?}: expected immediate, pinned or ramp"
            )),
        }
    }
}

/// A version on trial: its sequence number and the share of runs it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// The candidate's position in the history.
    pub seq: u64,
    /// Percent of runs (0..=100) that get it.
    pub ramp_percent: u8,
}

/// The rollout state of one activity type, as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutState {
    /// The policy of the latest deploy.
    pub policy: RolloutPolicy,
    /// The candidate, while a ramp runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<Candidate>,
}

/// What happened in a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A version was deployed (active, or as a candidate).
    Deploy,
    /// A candidate's share changed.
    Ramp,
    /// A candidate became active.
    Promote,
    /// A candidate was dropped (by hand or by the automatic abort).
    Abort,
    /// An earlier version became active.
    Rollback,
}

/// One rollout event, as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RolloutEvent {
    /// What happened.
    pub kind: EventKind,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Who did it (the caller's identity, `automatic-abort`, the watched directory, ...).
    pub by: String,
    /// Why, when there is a reason (an abort's failure rate, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The version it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<ComponentDigest>,
    /// The candidate's share after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp_percent: Option<u8>,
}

/// The key a pin is stored under: the workflow run, or the standalone activity.
pub fn pin_key(workflow_id: Option<&str>, run_id: Option<&str>, activity_id: &str) -> String {
    match (workflow_id, run_id) {
        (Some(w), Some(r)) => format!("run:{w}/{r}"),
        _ => format!("activity:{activity_id}"),
    }
}

/// True when the run named by `ramp_key` (its workflow id, or the activity id) falls in
/// `candidate`'s share. Deterministic across hosts and retries; raising the share keeps
/// every run that already had the candidate.
pub fn in_ramp(candidate: &ComponentDigest, ramp_key: &str, percent: u8) -> bool {
    let mut h = Sha256::new();
    h.update(candidate.as_str().as_bytes());
    h.update(b"\n");
    h.update(ramp_key.as_bytes());
    let bytes = h.finalize();
    let n = u64::from_be_bytes(bytes[..8].try_into().unwrap_or([0; 8]));
    n % 10_000 < u64::from(percent) * 100
}

/// When a candidate is aborted without a human.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AutoAbort {
    /// On or off.
    pub enabled: bool,
    /// Failure rate (0..=1) at or above which the candidate is aborted.
    pub failure_rate: f64,
    /// Calls needed in the window before the rate counts.
    pub min_calls: u32,
    /// The window, in milliseconds.
    pub window_ms: u64,
}

impl Default for AutoAbort {
    fn default() -> Self {
        Self {
            enabled: true,
            failure_rate: 0.5,
            min_calls: 10,
            window_ms: 300_000,
        }
    }
}

/// The failures an automatic abort counts: guest traps and limit breaches, and failures the
/// guest marked non-retryable. Retryable application failures (a service down), invalid
/// arguments (the caller's mistake) and cancellations do not count.
pub fn counts_against_candidate(failure: &ActivityFailure) -> bool {
    use activity_runtime::failure::kinds;
    const BREACHES: &[&str] = &[
        kinds::GUEST_TRAP,
        kinds::TIME_LIMIT_EXCEEDED,
        kinds::MEMORY_LIMIT_EXCEEDED,
        kinds::FUEL_EXHAUSTED,
        kinds::STACK_OVERFLOW,
        kinds::OUTPUT_TOO_LARGE,
    ];
    const NOT_THE_GUEST: &[&str] = &[kinds::INVALID_ARGUMENTS, kinds::INSTANCE_POOL_EXHAUSTED];
    let kind = failure.kind.as_str();
    BREACHES.contains(&kind) || (failure.non_retryable && !NOT_THE_GUEST.contains(&kind))
}

/// The recent outcomes of candidates on this host, for the automatic abort.
#[derive(Default)]
pub(crate) struct Outcomes {
    calls: HashMap<(String, u64), VecDeque<(Instant, bool)>>,
}

impl AutoAbort {
    /// The reason to abort a candidate with `calls` calls in the window, `failures` of which
    /// count against it; `None` while the rule holds back.
    pub fn verdict(&self, calls: u64, failures: u64) -> Option<String> {
        let rate = failures as f64 / calls.max(1) as f64;
        (self.enabled && calls >= u64::from(self.min_calls) && rate >= self.failure_rate).then(
            || {
                format!(
                    "{failures} of the last {calls} calls failed within {} s across the fleet (limit: {:.0}% of at least {} calls)",
                    self.window_ms / 1000,
                    self.failure_rate * 100.0,
                    self.min_calls
                )
            },
        )
    }
}

impl Outcomes {
    /// Records one call of candidate `seq` of `activity`; returns the calls and failures of
    /// its window on this host.
    pub(crate) fn record(
        &mut self,
        activity: &str,
        seq: u64,
        failed: bool,
        window_ms: u64,
    ) -> (u64, u64) {
        let now = Instant::now();
        let calls = self.calls.entry((activity.to_string(), seq)).or_default();
        calls.push_back((now, failed));
        self.totals(activity, seq, window_ms)
    }

    /// The calls and failures of candidate `seq` of `activity` in the window on this host.
    pub(crate) fn totals(&mut self, activity: &str, seq: u64, window_ms: u64) -> (u64, u64) {
        let now = Instant::now();
        let window = Duration::from_millis(window_ms);
        let Some(calls) = self.calls.get_mut(&(activity.to_string(), seq)) else {
            return (0, 0);
        };
        while calls
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > window)
        {
            calls.pop_front();
        }
        let failures = calls.iter().filter(|(_, f)| *f).count();
        (calls.len() as u64, failures as u64)
    }

    /// Forgets a candidate's calls.
    pub(crate) fn forget(&mut self, activity: &str) {
        self.calls.retain(|(a, _), _| a != activity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ramp_splits_runs_by_its_share_and_keeps_them_when_raised() {
        let digest = ComponentDigest::of(b"candidate");
        let at = |p| {
            (0..10_000)
                .filter(|i| in_ramp(&digest, &format!("user-{i}"), p))
                .count()
        };
        let ten = at(10);
        assert!((900..1100).contains(&ten), "{ten}");
        assert_eq!(at(0), 0);
        assert_eq!(at(100), 10_000);
        for i in 0..10_000 {
            let key = format!("user-{i}");
            if in_ramp(&digest, &key, 10) {
                assert!(in_ramp(&digest, &key, 30), "raising the ramp moved {key}");
            }
        }
    }

    #[test]
    fn the_abort_rule_needs_enough_calls_in_its_window() {
        let rule = AutoAbort::default();
        let mut o = Outcomes::default();
        for _ in 0..9 {
            let (calls, failures) = o.record("A", 2, true, rule.window_ms);
            assert_eq!(rule.verdict(calls, failures), None);
        }
        let (calls, failures) = o.record("A", 2, false, rule.window_ms);
        let reason = rule.verdict(calls, failures).expect("9 of 10 failed");
        assert!(reason.contains("9 of the last 10"), "{reason}");
        // Calls elsewhere in the fleet count with this host's.
        assert!(rule.verdict(3, 3).is_none());
        assert!(rule.verdict(3 + 7, 3 + 2).is_some());
        let mut o = Outcomes::default();
        for i in 0..30 {
            let (calls, failures) = o.record("A", 2, i % 3 == 0 && i > 20, rule.window_ms);
            assert_eq!(rule.verdict(calls, failures), None);
        }
        let off = AutoAbort {
            enabled: false,
            ..rule
        };
        assert_eq!(off.verdict(20, 20), None);
        assert_eq!(o.totals("B", 1, 1000), (0, 0));
    }
}
