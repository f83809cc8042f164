//! A guest's heartbeats on their way to Temporal, throttled at the boundary: a heartbeat
//! only replaces the latest details, and the latest details go to the core worker at most
//! once per interval (then the core's own throttle applies). A guest heartbeating in a tight
//! loop costs one string swap per call, and the last details it recorded are sent before its
//! task completes, so a retry resumes from them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use activity_runtime::HeartbeatSink;
use temporalio_common::protos::coresdk::ActivityHeartbeat;
use temporalio_sdk_core::Worker as CoreWorker;

use crate::payload;

/// How often the latest details go to the core worker at most.
pub const FORWARD_INTERVAL: Duration = Duration::from_secs(1);

/// Forwards a task's heartbeats to the core worker, at most once per [`FORWARD_INTERVAL`].
#[derive(Clone)]
pub struct ThrottledHeartbeats(Arc<Inner>);

/// Where details go: the core worker, for one task.
type Forward = Box<dyn Fn(Option<String>) + Send + Sync>;

struct Inner {
    forward: Forward,
    interval: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// When details last went to the core worker.
    sent: Option<Instant>,
    /// Details recorded since, not sent yet (`Some(None)`: a heartbeat without details).
    pending: Option<Option<String>>,
    /// A send of the pending details is scheduled.
    scheduled: bool,
    /// The task is completing: nothing more is sent.
    closed: bool,
    /// The latest details known: the guest's last, else those the attempt started with.
    latest: Option<String>,
}

impl ThrottledHeartbeats {
    /// For the task `token` of `core`, whose attempt started with the details `initial`
    /// (the last ones a previous attempt recorded).
    pub fn new(core: Arc<CoreWorker>, token: Vec<u8>, initial: Option<String>) -> Self {
        let heartbeats = Self::forwarding_to(
            FORWARD_INTERVAL,
            Box::new(move |details: Option<String>| {
                let details = details
                    .map(|d| vec![payload::from_json_text(&d)])
                    .unwrap_or_default();
                core.record_activity_heartbeat(ActivityHeartbeat {
                    task_token: token.clone(),
                    details,
                });
            }),
        );
        heartbeats.0.state.lock().unwrap().latest = initial;
        heartbeats
    }

    /// A heartbeat of the host's own for a guest that is still running, with the latest
    /// details known (Temporal keeps the details of each heartbeat, so an empty one would
    /// erase the guest's).
    pub fn keep_alive(&self) {
        let latest = self.0.state.lock().unwrap().latest.clone();
        self.heartbeat(latest);
    }

    fn forwarding_to(interval: Duration, forward: Forward) -> Self {
        Self(Arc::new(Inner {
            forward,
            interval,
            state: Mutex::new(State::default()),
        }))
    }

    /// Sends the details recorded and not yet sent, now, and nothing after: the task is
    /// completing (a retry resumes from these details).
    pub fn close(&self) {
        let pending = {
            let mut state = self.0.state.lock().unwrap();
            state.closed = true;
            state.pending.take()
        };
        if let Some(details) = pending {
            self.0.send(details);
        }
    }
}

impl Inner {
    fn send(&self, details: Option<String>) {
        (self.forward)(details);
    }
}

impl HeartbeatSink for ThrottledHeartbeats {
    fn heartbeat(&self, details: Option<String>) {
        let now = Instant::now();
        let wait = {
            let mut state = self.0.state.lock().unwrap();
            if state.closed {
                return;
            }
            if details.is_some() {
                state.latest.clone_from(&details);
            }
            match state.sent {
                Some(sent) if now.duration_since(sent) < self.0.interval => {
                    state.pending = Some(details);
                    if state.scheduled {
                        return;
                    }
                    state.scheduled = true;
                    self.0.interval - now.duration_since(sent)
                }
                _ => {
                    state.sent = Some(now);
                    state.pending = None;
                    drop(state);
                    self.0.send(details);
                    return;
                }
            }
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = self.0.clone();
        runtime.spawn(async move {
            tokio::time::sleep(wait).await;
            let pending = {
                let mut state = inner.state.lock().unwrap();
                state.scheduled = false;
                if state.closed {
                    return;
                }
                state.sent = Some(Instant::now());
                state.pending.take()
            };
            if let Some(details) = pending {
                inner.send(details);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_millis(200);

    fn recorded() -> (ThrottledHeartbeats, Arc<Mutex<Vec<Option<String>>>>) {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let sink = sent.clone();
        let heartbeats = ThrottledHeartbeats::forwarding_to(
            INTERVAL,
            Box::new(move |d| sink.lock().unwrap().push(d)),
        );
        (heartbeats, sent)
    }

    #[tokio::test]
    async fn a_tight_loop_of_heartbeats_sends_the_first_then_the_latest_per_interval() {
        let (heartbeats, sent) = recorded();
        let started = Instant::now();
        for i in 0..100_000 {
            heartbeats.heartbeat(Some(format!("{{\"n\":{i}}}")));
        }
        assert_eq!(sent.lock().unwrap()[0], Some("{\"n\":0}".to_string()));
        // The latest details follow within an interval (waited for, with a deadline).
        let last = Some("{\"n\":99999}".to_string());
        let deadline = Instant::now() + Duration::from_secs(30);
        while sent.lock().unwrap().last() != Some(&last) {
            assert!(Instant::now() < deadline, "{:?}", sent.lock().unwrap());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // One send when the loop began, then at most one per interval since.
        let intervals = (started.elapsed().as_millis() / INTERVAL.as_millis()) as usize;
        let sends = sent.lock().unwrap().len();
        assert!(
            sends <= 2 + intervals,
            "{sends} sends in {intervals} intervals"
        );
    }

    #[tokio::test]
    async fn a_keep_alive_repeats_the_latest_details_and_never_erases_them() {
        let (heartbeats, sent) = recorded();
        heartbeats.0.state.lock().unwrap().latest = Some("{\"step\":3}".into());
        heartbeats.keep_alive();
        heartbeats.heartbeat(Some("{\"step\":4}".into()));
        heartbeats.heartbeat(None);
        heartbeats.close();
        heartbeats.keep_alive();
        assert_eq!(
            *sent.lock().unwrap(),
            vec![Some("{\"step\":3}".to_string()), None]
        );
        assert_eq!(
            heartbeats.0.state.lock().unwrap().latest.as_deref(),
            Some("{\"step\":4}")
        );
    }

    #[tokio::test]
    async fn the_latest_details_are_sent_when_the_task_completes_and_nothing_after() {
        let (heartbeats, sent) = recorded();
        heartbeats.heartbeat(None);
        heartbeats.heartbeat(Some("{\"step\":7}".into()));
        heartbeats.close();
        heartbeats.heartbeat(Some("{\"step\":8}".into()));
        tokio::time::sleep(INTERVAL * 3).await;
        assert_eq!(
            *sent.lock().unwrap(),
            vec![None, Some("{\"step\":7}".to_string())]
        );
    }
}
