//! Whom a call is billed to, and what it cost in metrics by activity type and caller.
//!
//! The caller is the API key of a REST invoke (the API sets the `activity-host-caller`
//! header on the activity it starts), else `workflow:TYPE` for a call a workflow scheduled,
//! else `temporal` for a standalone activity any Temporal client started. Any client that
//! can reach the namespace could name any caller in that header: Temporal's namespace is the
//! trust boundary (mTLS and its authorizer), as for every other part of a task.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use activity_runtime::Usage;
use temporalio_common::protos::temporal::api::common::v1::Payload;

use crate::payload;

/// The header naming a call's caller.
pub const CALLER_HEADER: &str = "activity-host-caller";
/// The caller of a standalone activity without the header.
pub const TEMPORAL_CALLER: &str = "temporal";
/// Calls, by `activity_type`, `caller` and `outcome` (`ok`, `failed`).
pub const USAGE_CALLS: &str = "activity_usage_calls_total";
/// Wall time of calls, microseconds (counters hold integers), by `activity_type` and
/// `caller`.
pub const USAGE_WALL: &str = "activity_usage_wall_microseconds_total";
/// CPU time of calls, microseconds, by `activity_type` and `caller`.
pub const USAGE_CPU: &str = "activity_usage_cpu_microseconds_total";
/// Outgoing body bytes of calls, by `activity_type` and `caller`.
pub const USAGE_EGRESS_BYTES: &str = "activity_usage_egress_bytes_total";
/// Fuel consumed by calls (when counted), by `activity_type` and `caller`.
pub const USAGE_FUEL: &str = "activity_usage_fuel_total";
/// Distinct callers a host names in metric labels; later ones are `other` (the usage API
/// still names each).
pub const CALLERS_LABELLED: usize = 100;

/// The caller of a task: its `activity-host-caller` header, else its workflow's type.
pub fn caller(headers: &HashMap<String, Payload>, workflow_type: &str) -> String {
    let named = headers
        .get(CALLER_HEADER)
        .and_then(|p| payload::to_json(0, p).ok())
        .and_then(|v| v.as_str().map(str::to_string))
        .filter(|c| !c.is_empty() && c.len() <= 200);
    match named {
        Some(c) => c,
        None if !workflow_type.is_empty() => format!("workflow:{workflow_type}"),
        None => TEMPORAL_CALLER.to_string(),
    }
}

/// The caller labels a host has handed out: at most [`CALLERS_LABELLED`] distinct ones.
#[derive(Default)]
pub struct CallerLabels {
    seen: Mutex<HashSet<String>>,
}

impl CallerLabels {
    /// `caller` as a label: itself while fewer than [`CALLERS_LABELLED`] were seen, else
    /// `other`.
    pub fn label(&self, caller: &str) -> String {
        let Ok(mut seen) = self.seen.lock() else {
            return "other".into();
        };
        if seen.contains(caller) {
            return caller.to_string();
        }
        if seen.len() < CALLERS_LABELLED {
            seen.insert(caller.to_string());
            return caller.to_string();
        }
        "other".into()
    }

    /// Counts one call's usage.
    pub fn record(&self, activity_type: &str, caller: &str, usage: &Usage, failed: bool) {
        let caller = self.label(caller);
        let t = activity_type.to_string();
        metrics::counter!(USAGE_CALLS, "activity_type" => t.clone(), "caller" => caller.clone(), "outcome" => if failed { "failed" } else { "ok" })
            .increment(1);
        metrics::counter!(USAGE_WALL, "activity_type" => t.clone(), "caller" => caller.clone())
            .increment(usage.wall.as_micros() as u64);
        metrics::counter!(USAGE_CPU, "activity_type" => t.clone(), "caller" => caller.clone())
            .increment(usage.cpu.as_micros() as u64);
        metrics::counter!(USAGE_EGRESS_BYTES, "activity_type" => t.clone(), "caller" => caller.clone())
            .increment(usage.egress_bytes);
        if let Some(fuel) = usage.fuel {
            metrics::counter!(USAGE_FUEL, "activity_type" => t, "caller" => caller).increment(fuel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_names_the_caller_else_the_workflow_type() {
        let mut h = HashMap::new();
        assert_eq!(caller(&h, ""), "temporal");
        assert_eq!(caller(&h, "UserWorkflow"), "workflow:UserWorkflow");
        h.insert(
            CALLER_HEADER.to_string(),
            payload::from_json(&serde_json::json!("key_1 (ci)")),
        );
        assert_eq!(caller(&h, "UserWorkflow"), "key_1 (ci)");
    }

    #[test]
    fn caller_labels_are_bounded() {
        let labels = CallerLabels::default();
        for i in 0..CALLERS_LABELLED {
            assert_eq!(labels.label(&format!("c{i}")), format!("c{i}"));
        }
        assert_eq!(labels.label("one-too-many"), "other");
        assert_eq!(labels.label("c0"), "c0");
    }
}
