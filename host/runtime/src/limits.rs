//! Per-activity limits and the store limiter that enforces memory caps and remembers
//! which limit a guest ran into.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What one activity may use per call. Defaults come from configuration; each deployment
/// may lower or raise them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ActivityLimits {
    /// Largest total linear memory of one call's instance, in bytes.
    pub max_memory_bytes: u64,
    /// Longest a call may run, in milliseconds; the caller's deadline may shorten it.
    pub max_execution_ms: u64,
    /// Largest result, as JSON text, in bytes.
    pub max_output_bytes: u64,
    /// Fuel budget per call (roughly instructions); only enforced when the engine counts fuel.
    pub fuel: Option<u64>,
    /// Bytes of guest stdout and stderr kept for the log per call; the rest is dropped.
    pub max_log_bytes: u64,
    /// Calls of this activity type running at once on one host; more wait for a turn (up to
    /// their time limit, then fail retryable with `ConcurrencyLimitReached`), so one busy
    /// type cannot take every core from the others. 0: automatic, twice the host's cores
    /// (at least 4).
    pub max_concurrent: u32,
}

impl Default for ActivityLimits {
    fn default() -> Self {
        Self {
            max_memory_bytes: 128 << 20,
            max_execution_ms: 60_000,
            max_output_bytes: 4 << 20,
            fuel: None,
            max_log_bytes: 64 << 10,
            max_concurrent: 0,
        }
    }
}

/// The host's cores, read once: `available_parallelism` reads the cgroup's CPU quota from
/// `/proc` and `/sys` on every call (several syscalls, a quarter of a sandboxed call's time
/// when it ran per call).
fn host_cores() -> u32 {
    static CORES: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get()) as u32)
}

impl ActivityLimits {
    /// The cap of concurrent calls on this host: `max_concurrent`, or when 0 twice the
    /// host's cores (at least 4).
    pub fn concurrency_cap(&self) -> u32 {
        if self.max_concurrent > 0 {
            return self.max_concurrent;
        }
        (host_cores() * 2).max(4)
    }

    /// The longest a call may run given the caller's remaining time, if any.
    pub fn time_limit(&self, remaining: Option<Duration>) -> Duration {
        let own = Duration::from_millis(self.max_execution_ms);
        remaining.map_or(own, |r| r.min(own))
    }
}

/// Enforces the memory cap of one call and records a refused growth, so that the trap
/// which usually follows is reported as `MemoryLimitExceeded` rather than a plain trap.
#[derive(Debug)]
pub struct ActivityLimiter {
    max_memory_bytes: usize,
    /// Linear memory currently reserved by the instance, summed over its memories.
    memory_in_use: usize,
    /// Largest `memory_in_use` seen during the call.
    pub peak_memory_bytes: usize,
    /// Set when a memory growth was refused.
    pub memory_refused: bool,
}

/// Table elements any one table may hold; far above what real components use.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl ActivityLimiter {
    /// A limiter allowing `max_memory_bytes` of linear memory in total.
    pub fn new(max_memory_bytes: u64) -> Self {
        Self {
            max_memory_bytes: usize::try_from(max_memory_bytes).unwrap_or(usize::MAX),
            memory_in_use: 0,
            peak_memory_bytes: 0,
            memory_refused: false,
        }
    }
}

impl wasmtime::ResourceLimiter for ActivityLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.memory_in_use - current.min(self.memory_in_use) + desired;
        if total > self.max_memory_bytes {
            self.memory_refused = true;
            return Ok(false);
        }
        self.memory_in_use = total;
        self.peak_memory_bytes = self.peak_memory_bytes.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn refuses_growth_past_the_cap_and_remembers_it() {
        let mut l = ActivityLimiter::new(10 << 20);
        assert!(l.memory_growing(0, 4 << 20, None).unwrap());
        assert!(l.memory_growing(4 << 20, 8 << 20, None).unwrap());
        assert!(!l.memory_refused);
        assert!(!l.memory_growing(8 << 20, 11 << 20, None).unwrap());
        assert!(l.memory_refused);
        assert_eq!(l.peak_memory_bytes, 8 << 20);
    }

    #[test]
    fn caller_deadline_shortens_the_time_limit() {
        let limits = ActivityLimits {
            max_execution_ms: 1000,
            ..Default::default()
        };
        assert_eq!(limits.time_limit(None), Duration::from_secs(1));
        assert_eq!(
            limits.time_limit(Some(Duration::from_millis(10))),
            Duration::from_millis(10)
        );
        assert_eq!(
            limits.time_limit(Some(Duration::from_secs(5))),
            Duration::from_secs(1)
        );
    }
}
