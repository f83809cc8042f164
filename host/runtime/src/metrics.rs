//! The runtime's Prometheus metrics, recorded through the `metrics` facade: the binary
//! installs the exporter; without one, recording costs next to nothing.

use std::time::Duration;

use crate::failure::kinds;
use crate::{ActivityComponent, ActivityFailure, Invocation};

/// Activity calls, by `activity_type`, `version` (the component's digest) and `outcome`
/// (`completed`, or the failure's type).
pub const EXECUTIONS: &str = "activity_executions_total";
/// Time from the start of instantiation to the result, by `activity_type` and `version`.
pub const EXECUTION_SECONDS: &str = "activity_execution_duration_seconds";
/// Time spent instantiating, by `activity_type`.
pub const INSTANTIATE_SECONDS: &str = "activity_instantiate_duration_seconds";
/// Peak linear memory of a call's instance, by `activity_type`.
pub const PEAK_MEMORY_BYTES: &str = "activity_peak_memory_bytes";
/// Calls stopped by a limit, by `activity_type` and `kind` (`time`, `memory`, `fuel`,
/// `stack`, `output`, `instances`).
pub const LIMIT_BREACHES: &str = "activity_limit_breaches_total";

/// Calls that waited for a turn under their type's `max_concurrent`, by `activity_type`.
pub const CONCURRENCY_WAITS: &str = "activity_concurrency_waits_total";

/// Every metric this crate records.
pub const ALL: &[&str] = &[
    CONCURRENCY_WAITS,
    EXECUTIONS,
    EXECUTION_SECONDS,
    INSTANTIATE_SECONDS,
    PEAK_MEMORY_BYTES,
    LIMIT_BREACHES,
];

/// The limit a failure kind reports as breached, if any.
fn breached(kind: &str) -> Option<&'static str> {
    Some(match kind {
        kinds::TIME_LIMIT_EXCEEDED => "time",
        kinds::MEMORY_LIMIT_EXCEEDED => "memory",
        kinds::FUEL_EXHAUSTED => "fuel",
        kinds::STACK_OVERFLOW => "stack",
        kinds::OUTPUT_TOO_LARGE => "output",
        kinds::INSTANCE_POOL_EXHAUSTED => "instances",
        _ => return None,
    })
}

/// Records one call of `activity`.
pub(crate) fn record(
    activity: &ActivityComponent,
    outcome: &Result<Invocation, ActivityFailure>,
    elapsed: Duration,
) {
    let activity_type = activity.spec.activity_type.clone();
    let version = activity.digest.as_str().to_string();
    let kind = match outcome {
        Ok(inv) => {
            metrics::histogram!(INSTANTIATE_SECONDS, "activity_type" => activity_type.clone())
                .record(inv.instantiate_time.as_secs_f64());
            metrics::histogram!(PEAK_MEMORY_BYTES, "activity_type" => activity_type.clone())
                .record(inv.peak_memory_bytes as f64);
            "completed".to_string()
        }
        Err(f) => {
            if let Some(limit) = breached(&f.kind) {
                metrics::counter!(LIMIT_BREACHES, "activity_type" => activity_type.clone(), "kind" => limit)
                    .increment(1);
            }
            f.kind.clone()
        }
    };
    metrics::histogram!(EXECUTION_SECONDS, "activity_type" => activity_type.clone(), "version" => version.clone())
        .record(elapsed.as_secs_f64());
    metrics::counter!(EXECUTIONS, "activity_type" => activity_type, "version" => version, "outcome" => kind)
        .increment(1);
}
