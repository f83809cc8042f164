//! What one call cost: wall time, CPU time, peak linear memory, fuel when counted, and the
//! outgoing requests and their bytes. Measured for every call, failed ones included.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What one call cost.
///
/// - `wall`: from the start of instantiation to the result (waiting for a turn under the
///   type's `max_concurrent` is not counted).
/// - `cpu`: CPU time of the host threads while they ran the call's task (the guest's code,
///   instantiation, and the host functions it calls in line); the background I/O of its
///   outgoing connections is not counted.
/// - `fuel`: instructions executed, when the engine counts fuel.
/// - `egress_bytes`: request and response body bytes of its outgoing requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Wall time of the call.
    pub wall: Duration,
    /// CPU time of the call.
    pub cpu: Duration,
    /// Peak linear memory of the instance, in bytes.
    pub peak_memory_bytes: u64,
    /// Fuel consumed, when the engine counts fuel.
    pub fuel: Option<u64>,
    /// Outgoing requests sent (refused ones are not).
    pub egress_requests: u64,
    /// Bytes of their bodies, both ways.
    pub egress_bytes: u64,
}

/// [`Usage`] as JSON: what a completed activity's result carries in its metadata
/// (`activity-host-usage`) and what the usage API sums.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UsageView {
    /// Wall time, in milliseconds.
    pub wall_ms: f64,
    /// CPU time, in milliseconds.
    pub cpu_ms: f64,
    /// Peak linear memory, in bytes.
    pub peak_memory_bytes: u64,
    /// Fuel consumed, when counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Outgoing requests sent.
    pub egress_requests: u64,
    /// Outgoing body bytes, both ways.
    pub egress_bytes: u64,
}

/// Milliseconds with microsecond precision.
pub fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

impl Usage {
    /// The JSON form.
    pub fn view(&self) -> UsageView {
        UsageView {
            wall_ms: millis(self.wall),
            cpu_ms: millis(self.cpu),
            peak_memory_bytes: self.peak_memory_bytes,
            fuel: self.fuel,
            egress_requests: self.egress_requests,
            egress_bytes: self.egress_bytes,
        }
    }
}

/// The outgoing requests of one call, counted as they go.
#[derive(Debug, Default)]
pub struct EgressMeter {
    requests: AtomicU64,
    /// The byte counters of each request's body and its response's.
    bodies: Mutex<Vec<Arc<AtomicU64>>>,
}

impl EgressMeter {
    /// Counts a request sent, whose bodies count into `bodies`.
    pub(crate) fn sent(&self, bodies: [Arc<AtomicU64>; 2]) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut b) = self.bodies.lock() {
            b.extend(bodies);
        }
    }

    /// Requests sent so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Body bytes moved so far, both ways.
    pub fn bytes(&self) -> u64 {
        self.bodies
            .lock()
            .map(|b| b.iter().map(|c| c.load(Ordering::Relaxed)).sum())
            .unwrap_or(0)
    }
}

/// The CPU time this thread has used.
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// A future that sums the CPU time of the threads that poll it: a call's task may move
/// between the runtime's threads, and each poll runs on one.
pub struct CpuTimed<F> {
    inner: Pin<Box<F>>,
    spent: Duration,
}

impl<F: Future> CpuTimed<F> {
    /// Measures `inner`.
    pub fn new(inner: F) -> Self {
        Self {
            inner: Box::pin(inner),
            spent: Duration::ZERO,
        }
    }
}

impl<F: Future> Future for CpuTimed<F> {
    type Output = (F::Output, Duration);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let before = thread_cpu();
        let polled = self.inner.as_mut().poll(cx);
        let spent = thread_cpu().saturating_sub(before);
        self.spent += spent;
        polled.map(|out| (out, self.spent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cpu_time_counts_work_not_waiting() {
        let ((), idle) = CpuTimed::new(tokio::time::sleep(Duration::from_millis(100))).await;
        assert!(idle < Duration::from_millis(50), "{idle:?} for a sleep");
        let (n, busy) = CpuTimed::new(async {
            let mut h = 0u64;
            for i in 0..30_000_000u64 {
                h = h.wrapping_mul(31).wrapping_add(std::hint::black_box(i));
            }
            h
        })
        .await;
        std::hint::black_box(n);
        assert!(busy > Duration::from_millis(1), "{busy:?} for a loop");
    }

    #[test]
    fn the_view_is_in_milliseconds() {
        let u = Usage {
            wall: Duration::from_micros(1_234_567),
            cpu: Duration::from_micros(1500),
            ..Default::default()
        };
        assert_eq!(u.view().wall_ms, 1234.567);
        assert_eq!(u.view().cpu_ms, 1.5);
    }
}
