//! The ledger: what every call cost, summed per minute, activity type, version and caller,
//! and the outcomes of candidates per host, for the fleet-wide automatic abort. Hosts sum
//! in memory and add their sums to the store every `registry.usage.flush_ms`; the usage API
//! reads the store, so every host answers for the whole fleet, and usage survives restarts.

use std::collections::HashMap;
use std::time::Duration;

use activity_runtime::Usage;
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// Usage is summed per minute.
pub const USAGE_BUCKET_MS: u64 = 60_000;
/// Candidate outcomes are summed per 10 seconds.
pub const OUTCOME_BUCKET_MS: u64 = 10_000;

/// One sum of calls in the store: a minute of one version of an activity type, for one
/// caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageRow {
    /// The minute's start, milliseconds since the Unix epoch.
    pub bucket_ms: u64,
    /// The activity type.
    pub activity: String,
    /// The version's digest.
    pub version: String,
    /// Whom the calls are billed to.
    pub caller: String,
    /// Calls.
    pub calls: u64,
    /// Failed calls.
    pub failures: u64,
    /// Wall time, microseconds.
    pub wall_us: u64,
    /// CPU time, microseconds.
    pub cpu_us: u64,
    /// The highest peak linear memory of one call, bytes.
    pub peak_memory_bytes: u64,
    /// Fuel consumed (0 when not counted).
    pub fuel: u64,
    /// Outgoing requests.
    pub egress_requests: u64,
    /// Outgoing body bytes, both ways.
    pub egress_bytes: u64,
}

impl UsageRow {
    /// Adds `other`'s sums to these.
    pub fn merge(&mut self, other: &UsageRow) {
        self.calls += other.calls;
        self.failures += other.failures;
        self.wall_us += other.wall_us;
        self.cpu_us += other.cpu_us;
        self.peak_memory_bytes = self.peak_memory_bytes.max(other.peak_memory_bytes);
        self.fuel += other.fuel;
        self.egress_requests += other.egress_requests;
        self.egress_bytes += other.egress_bytes;
    }

    fn add(&mut self, usage: &Usage, failed: bool) {
        self.calls += 1;
        self.failures += u64::from(failed);
        self.wall_us += usage.wall.as_micros() as u64;
        self.cpu_us += usage.cpu.as_micros() as u64;
        self.peak_memory_bytes = self.peak_memory_bytes.max(usage.peak_memory_bytes);
        self.fuel += usage.fuel.unwrap_or(0);
        self.egress_requests += usage.egress_requests;
        self.egress_bytes += usage.egress_bytes;
    }
}

/// What usage is summed by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UsageGroup {
    /// By activity type.
    #[default]
    Activity,
    /// By caller.
    Caller,
}

impl UsageGroup {
    /// The stored column usage is grouped by.
    pub fn column(self) -> &'static str {
        match self {
            UsageGroup::Activity => "activity",
            UsageGroup::Caller => "caller",
        }
    }
}

/// One row of `GET /api/v1/usage`: the calls of one activity type or caller.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UsageTotal {
    /// The activity type or the caller.
    pub key: String,
    /// Calls.
    pub calls: u64,
    /// Failed calls.
    pub failures: u64,
    /// Wall time, milliseconds.
    pub wall_ms: f64,
    /// CPU time, milliseconds.
    pub cpu_ms: f64,
    /// The highest peak linear memory of one call, bytes.
    pub peak_memory_bytes: u64,
    /// Fuel consumed (0 when the engine does not count it).
    pub fuel: u64,
    /// Outgoing requests.
    pub egress_requests: u64,
    /// Outgoing body bytes, both ways.
    pub egress_bytes: u64,
}

impl UsageTotal {
    /// A total from the store's integer sums.
    pub fn from_sums(key: String, sums: [u64; 8]) -> Self {
        let [calls, failures, wall_us, cpu_us, peak_memory_bytes, fuel, egress_requests, egress_bytes] =
            sums;
        Self {
            key,
            calls,
            failures,
            wall_ms: wall_us as f64 / 1000.0,
            cpu_ms: cpu_us as f64 / 1000.0,
            peak_memory_bytes,
            fuel,
            egress_requests,
            egress_bytes,
        }
    }
}

/// One sum of a candidate's calls on one host: 10 seconds of version `seq` of `activity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeRow {
    /// The activity type.
    pub activity: String,
    /// The candidate's sequence number.
    pub seq: u64,
    /// The 10 seconds' start, milliseconds since the Unix epoch.
    pub bucket_ms: u64,
    /// Calls.
    pub calls: u64,
    /// Calls that count against the candidate.
    pub failures: u64,
}

/// A candidate's calls on the other hosts of the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeTotal {
    /// The activity type.
    pub activity: String,
    /// The candidate's sequence number.
    pub seq: u64,
    /// Calls.
    pub calls: u64,
    /// Calls that count against it.
    pub failures: u64,
}

/// Where the ledger is kept. Implementations block; the registry calls them off the async
/// threads.
pub trait LedgerStore: Send + Sync + 'static {
    /// Adds `rows` to the stored sums of the same minute, activity type, version and caller
    /// (peak memory: the higher one), in one transaction.
    fn add_usage(&self, rows: &[UsageRow]) -> Result<(), StoreError>;
    /// Sums of the minutes that end after `since_ms`, by `group_by`, largest CPU time first;
    /// only `caller`'s calls when given.
    fn usage(
        &self,
        since_ms: u64,
        group_by: UsageGroup,
        caller: Option<&str>,
    ) -> Result<Vec<UsageTotal>, StoreError>;
    /// Adds `host_id`'s candidate outcomes, in one transaction.
    fn add_outcomes(&self, host_id: &str, rows: &[OutcomeRow]) -> Result<(), StoreError>;
    /// Candidate outcomes of every other host since `since_ms`.
    fn outcomes_elsewhere(
        &self,
        host_id: &str,
        since_ms: u64,
    ) -> Result<Vec<OutcomeTotal>, StoreError>;
    /// Drops usage before `usage_before_ms` and outcomes before `outcomes_before_ms`;
    /// returns how many rows.
    fn sweep_ledger(
        &self,
        usage_before_ms: u64,
        outcomes_before_ms: u64,
    ) -> Result<u64, StoreError>;
}

/// What a host has counted and not yet added to the store.
#[derive(Default)]
pub(crate) struct Unwritten {
    usage: HashMap<(u64, String, String, String), UsageRow>,
    outcomes: HashMap<(String, u64, u64), (u64, u64)>,
}

impl Unwritten {
    /// Counts one call.
    pub(crate) fn call(
        &mut self,
        at_ms: u64,
        activity: &str,
        version: &str,
        caller: &str,
        usage: &Usage,
        failed: bool,
    ) {
        let bucket_ms = at_ms - at_ms % USAGE_BUCKET_MS;
        let key = (
            bucket_ms,
            activity.to_string(),
            version.to_string(),
            caller.to_string(),
        );
        self.usage
            .entry(key)
            .or_insert_with(|| UsageRow {
                bucket_ms,
                activity: activity.to_string(),
                version: version.to_string(),
                caller: caller.to_string(),
                ..UsageRow::default()
            })
            .add(usage, failed);
    }

    /// Counts one call of a candidate.
    pub(crate) fn outcome(&mut self, at_ms: u64, activity: &str, seq: u64, failed: bool) {
        let bucket_ms = at_ms - at_ms % OUTCOME_BUCKET_MS;
        let sums = self
            .outcomes
            .entry((activity.to_string(), seq, bucket_ms))
            .or_default();
        sums.0 += 1;
        sums.1 += u64::from(failed);
    }

    /// Everything counted, leaving nothing.
    pub(crate) fn take(&mut self) -> (Vec<UsageRow>, Vec<OutcomeRow>) {
        let usage = self.usage.drain().map(|(_, row)| row).collect();
        let outcomes = self
            .outcomes
            .drain()
            .map(
                |((activity, seq, bucket_ms), (calls, failures))| OutcomeRow {
                    activity,
                    seq,
                    bucket_ms,
                    calls,
                    failures,
                },
            )
            .collect();
        (usage, outcomes)
    }

    /// Puts back what could not be written, to be tried again (bounded: a store down for
    /// long loses the oldest minutes, never the host's memory).
    pub(crate) fn restore(&mut self, usage: Vec<UsageRow>, outcomes: Vec<OutcomeRow>) {
        for row in usage {
            if self.usage.len() >= UNWRITTEN_ROWS_KEPT {
                tracing::warn!("usage not written for too long: the sums over the cap are dropped");
                break;
            }
            let key = (
                row.bucket_ms,
                row.activity.clone(),
                row.version.clone(),
                row.caller.clone(),
            );
            self.usage
                .entry(key)
                .and_modify(|kept| kept.merge(&row))
                .or_insert(row);
        }
        for o in outcomes {
            if self.outcomes.len() >= UNWRITTEN_ROWS_KEPT {
                break;
            }
            let sums = self
                .outcomes
                .entry((o.activity, o.seq, o.bucket_ms))
                .or_default();
            sums.0 += o.calls;
            sums.1 += o.failures;
        }
    }

    /// True when nothing is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.usage.is_empty() && self.outcomes.is_empty()
    }
}

/// Sums a host keeps while its store cannot be written.
const UNWRITTEN_ROWS_KEPT: usize = 100_000;

/// How long usage and candidate outcomes are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsageSettings {
    /// How often a host adds what it counted to the store, in milliseconds.
    pub flush_ms: u64,
    /// How long usage is kept, in milliseconds.
    pub retention_ms: u64,
}

impl Default for UsageSettings {
    fn default() -> Self {
        Self {
            flush_ms: 1_000,
            retention_ms: Duration::from_secs(30 * 24 * 3600).as_millis() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_sum_per_minute_version_and_caller() {
        let mut u = Unwritten::default();
        let usage = Usage {
            wall: Duration::from_millis(3),
            cpu: Duration::from_millis(2),
            peak_memory_bytes: 100,
            egress_bytes: 7,
            ..Usage::default()
        };
        u.call(60_001, "A", "v1", "k", &usage, false);
        u.call(119_999, "A", "v1", "k", &usage, true);
        u.call(120_000, "A", "v1", "k", &usage, false);
        u.call(60_002, "A", "v1", "other", &usage, false);
        u.outcome(10_500, "A", 2, true);
        u.outcome(19_000, "A", 2, false);
        let (mut rows, outcomes) = u.take();
        rows.sort_by_key(|r| (r.bucket_ms, r.caller.clone()));
        assert_eq!(rows.len(), 3);
        assert_eq!(
            (
                rows[0].bucket_ms,
                rows[0].calls,
                rows[0].failures,
                rows[0].cpu_us
            ),
            (60_000, 2, 1, 4000)
        );
        assert_eq!(rows[0].egress_bytes, 14);
        assert_eq!(rows[1].caller, "other");
        assert_eq!(rows[2].bucket_ms, 120_000);
        assert_eq!(outcomes.len(), 1);
        assert_eq!((outcomes[0].calls, outcomes[0].failures), (2, 1));
        assert!(u.is_empty());
        u.restore(rows, outcomes);
        u.call(60_001, "A", "v1", "k", &usage, false);
        let (rows, _) = u.take();
        let k = rows
            .iter()
            .find(|r| r.bucket_ms == 60_000 && r.caller == "k")
            .unwrap();
        assert_eq!(k.calls, 3, "restored sums and new calls add up");
    }
}
