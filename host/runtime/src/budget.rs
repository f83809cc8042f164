//! The host's memory budget: the memory limits of the calls in flight, summed, stay under
//! `runtime.memory_budget_bytes`. A call reserves its `max_memory_bytes` before it is
//! instantiated and gives it back when it ends; one that cannot reserve it within its own
//! time limit fails retryably (`MemoryBudgetExhausted`), so another host takes the retry
//! while this one's memory is spoken for.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::failure::{kinds, ActivityFailure};

/// Reservations are counted in MiB (a semaphore's permits).
const MIB: u64 = 1 << 20;
/// Memory reserved by calls in flight, bytes (gauge).
pub const RESERVED: &str = "activity_memory_reserved_bytes";
/// The budget, bytes (gauge).
pub const BUDGET: &str = "activity_memory_budget_bytes";

/// The budget of one host.
pub(crate) struct MemoryBudget {
    permits: Arc<Semaphore>,
    total_mib: u32,
}

impl MemoryBudget {
    /// A budget of `bytes` (at least 1 MiB).
    pub(crate) fn new(bytes: u64) -> Self {
        let total_mib = (bytes / MIB).clamp(1, u64::from(u32::MAX >> 4)) as u32;
        ::metrics::gauge!(BUDGET).set((u64::from(total_mib) * MIB) as f64);
        ::metrics::gauge!(RESERVED).set(0.0);
        Self {
            permits: Arc::new(Semaphore::new(total_mib as usize)),
            total_mib,
        }
    }

    /// Bytes reserved by calls in flight now.
    pub(crate) fn reserved_bytes(&self) -> u64 {
        reserved_bytes(&self.permits, self.total_mib)
    }

    /// Reserves `limit` bytes (rounded up to whole MiB, at most the whole budget) for one
    /// call, waiting at most `wait`.
    pub(crate) async fn reserve(
        &self,
        activity: &str,
        limit: u64,
        wait: Duration,
    ) -> Result<Reservation, ActivityFailure> {
        let mib = limit.div_ceil(MIB).clamp(1, u64::from(self.total_mib)) as u32;
        let permit = match self.permits.clone().try_acquire_many_owned(mib) {
            Ok(p) => p,
            Err(_) => tokio::time::timeout(wait, self.permits.clone().acquire_many_owned(mib))
                .await
                .ok()
                .and_then(Result::ok)
                .ok_or_else(|| {
                    ActivityFailure::new(
                        kinds::MEMORY_BUDGET_EXHAUSTED,
                        format!(
                            "{activity} needs {mib} MiB of this host's memory budget ({} MiB), which calls in flight held for as long as this call could wait ({} ms)",
                            self.total_mib,
                            wait.as_millis()
                        ),
                        false,
                    )
                })?,
        };
        ::metrics::gauge!(RESERVED).set(self.reserved_bytes() as f64);
        Ok(Reservation {
            permit: Some(permit),
            permits: self.permits.clone(),
            total_mib: self.total_mib,
        })
    }
}

/// Bytes of a budget of `total_mib` that `permits` has handed out.
fn reserved_bytes(permits: &Semaphore, total_mib: u32) -> u64 {
    u64::from(total_mib).saturating_sub(permits.available_permits() as u64) * MIB
}

/// One call's share of the budget, given back when dropped.
pub(crate) struct Reservation {
    permit: Option<OwnedSemaphorePermit>,
    permits: Arc<Semaphore>,
    total_mib: u32,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        drop(self.permit.take());
        ::metrics::gauge!(RESERVED).set(reserved_bytes(&self.permits, self.total_mib) as f64);
    }
}

/// The budget a host gets when the configuration names none: three quarters of the memory
/// limit of its cgroup (a container's), or none outside one.
pub fn default_budget() -> Option<u64> {
    let max = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok()?;
    let bytes: u64 = max.trim().parse().ok()?;
    Some(bytes / 4 * 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_wait_for_the_budget_and_fail_retryably_when_it_stays_taken() {
        let budget = MemoryBudget::new(256 * MIB);
        let first = budget
            .reserve("A", 128 * MIB, Duration::ZERO)
            .await
            .unwrap();
        let second = budget
            .reserve("A", 100 * MIB + 1, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(budget.reserved_bytes(), 229 * MIB);
        let refused = budget
            .reserve("B", 64 * MIB, Duration::from_millis(20))
            .await
            .err()
            .unwrap();
        assert_eq!(refused.kind, kinds::MEMORY_BUDGET_EXHAUSTED);
        assert!(!refused.non_retryable);
        drop(first);
        assert_eq!(budget.reserved_bytes(), 101 * MIB);
        budget.reserve("B", 64 * MIB, Duration::ZERO).await.unwrap();
        drop(second);
        // A limit over the whole budget takes all of it, alone.
        let all = budget
            .reserve("C", 1 << 40, Duration::from_millis(20))
            .await
            .unwrap();
        assert_eq!(budget.reserved_bytes(), 256 * MIB);
        drop(all);
        assert_eq!(budget.reserved_bytes(), 0);
    }
}
