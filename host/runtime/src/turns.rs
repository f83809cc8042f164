//! Turns: how many calls of one activity type may run on this host at once
//! (`max_concurrent`), and who waits for one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::failure::{kinds, ActivityFailure};
use crate::metrics;

/// Per activity type, the calls that may run at once (`max_concurrent`), as semaphores.
#[derive(Default)]
pub(crate) struct Turns(std::sync::Mutex<std::collections::HashMap<String, TypeTurns>>);

/// One activity type's turns: its cap, the semaphore handing them out, the calls waiting.
struct TypeTurns {
    cap: u32,
    semaphore: Arc<tokio::sync::Semaphore>,
    waiting: Arc<AtomicU64>,
}

/// Counts a call as waiting for a turn while it lives.
struct Waiting(Arc<AtomicU64>);

impl Waiting {
    fn start(count: &Arc<AtomicU64>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Turns {
    /// Calls of `activity` holding a turn now.
    pub(crate) fn running(&self, activity: &str) -> usize {
        let types = self.0.lock().unwrap_or_else(|p| p.into_inner());
        types.get(activity).map_or(0, |t| {
            (t.cap as usize).saturating_sub(t.semaphore.available_permits())
        })
    }

    /// Calls of `activity` waiting for a turn now.
    pub(crate) fn waiting(&self, activity: &str) -> usize {
        let types = self.0.lock().unwrap_or_else(|p| p.into_inner());
        types
            .get(activity)
            .map_or(0, |t| t.waiting.load(Ordering::SeqCst) as usize)
    }

    /// Waits for a turn of `activity` under `cap`, at most `wait`.
    pub(crate) async fn take(
        &self,
        activity: &str,
        cap: u32,
        wait: Duration,
    ) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, ActivityFailure> {
        if cap == 0 {
            return Ok(None);
        }
        let (semaphore, waiting) = {
            let mut types = self.0.lock().unwrap_or_else(|p| p.into_inner());
            let fresh = || TypeTurns {
                cap,
                semaphore: Arc::new(tokio::sync::Semaphore::new(cap as usize)),
                waiting: Arc::default(),
            };
            let entry = types.entry(activity.to_string()).or_insert_with(fresh);
            if entry.cap != cap {
                // A new version with another cap: calls already running keep their permits
                // of the old semaphore.
                *entry = fresh();
            }
            (entry.semaphore.clone(), entry.waiting.clone())
        };
        if let Ok(permit) = semaphore.clone().try_acquire_owned() {
            return Ok(Some(permit));
        }
        ::metrics::counter!(metrics::CONCURRENCY_WAITS, "activity_type" => activity.to_string())
            .increment(1);
        let _waiting = Waiting::start(&waiting);
        match tokio::time::timeout(wait, semaphore.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            _ => Err(ActivityFailure::new(
                kinds::CONCURRENCY_LIMIT_REACHED,
                format!(
                    "{activity} had {cap} calls running on this host for as long as this call could wait ({} ms)",
                    wait.as_millis()
                ),
                false,
            )),
        }
    }
}
