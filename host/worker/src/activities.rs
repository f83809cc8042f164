//! The activity half of the worker: poll activity tasks from the shared core worker,
//! dispatch each by its activity type to the component runtime, complete it.
//!
//! Polling, dispatch and completion are separate steps so each stays small: [`run`] polls,
//! [`Dispatcher::start`] and [`Dispatcher::cancel`] dispatch, [`Dispatcher::execute`] runs a
//! task to an [`ActivityExecutionResult`], and the spawned task completes it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use activity_runtime::{
    ActivityCatalog, ActivityFailure, ActivityInfo, CallContext, CallKey, Cancellation, Finished,
    HeartbeatSink, Runtime, Unresolved,
};
use temporalio_common::protos::coresdk::activity_result::ActivityExecutionResult;
use temporalio_common::protos::coresdk::activity_task::{
    activity_task, ActivityCancelReason, ActivityTask, Cancel, Start,
};
use temporalio_common::protos::coresdk::ActivityTaskCompletion;
use temporalio_common::protos::temporal::api::common::v1::Payloads;
use temporalio_common::protos::temporal::api::failure::v1::{
    failure::FailureInfo, ApplicationFailureInfo, Failure,
};
use temporalio_sdk_core::Worker as CoreWorker;
use tokio::sync::Notify;
use tracing::Instrument;

use crate::billing::CallerLabels;
use crate::heartbeats::{ThrottledHeartbeats, FORWARD_INTERVAL};
use crate::payload;

/// Failure type of a task whose activity type is not deployed on this host.
pub const ACTIVITY_NOT_DEPLOYED: &str = "ActivityNotDeployed";
/// Failure type of a task whose version cannot be known or loaded now (the registry's store
/// is unreachable, the version does not load); retried.
pub const VERSION_UNAVAILABLE: &str = "ActivityVersionUnavailable";
/// Failure type of a task whose arguments are not JSON.
pub const INVALID_PAYLOAD: &str = "InvalidPayload";
/// Activity tasks this host is running.
pub const SLOTS_IN_USE: &str = "activity_task_slots_in_use";
/// Activity tasks this host runs at most (`worker.max_concurrent_activities`).
pub const SLOTS_MAX: &str = "activity_task_slots_max";
/// Activity tasks this host could take now: the maximum less those running.
pub const SLOTS_AVAILABLE: &str = "activity_task_slots_available";
/// Activity tasks refused because their type is not deployed (no label: the type names come
/// from any client; the warning in the log names each).
pub const NOT_DEPLOYED: &str = "activity_tasks_not_deployed_total";
/// Source written on every failure the host reports.
const FAILURE_SOURCE: &str = "activity-host";
/// Pause after a failed poll before polling again.
const POLL_ERROR_BACKOFF: Duration = Duration::from_millis(500);

/// A running task's handles.
struct Running {
    cancellation: Cancellation,
    interrupt: Arc<Notify>,
}

/// Dispatches activity tasks to the component runtime.
pub struct Dispatcher {
    core: Arc<CoreWorker>,
    runtime: Arc<Runtime>,
    catalog: Arc<dyn ActivityCatalog>,
    namespace: String,
    task_queue: String,
    cancel_grace: Duration,
    running: Mutex<HashMap<Vec<u8>, Running>>,
    /// Activity tasks run at once at most.
    slots: usize,
    /// The callers named in usage metrics.
    callers: CallerLabels,
}

impl Dispatcher {
    /// A dispatcher for tasks from `core`.
    pub fn new(
        core: Arc<CoreWorker>,
        runtime: Arc<Runtime>,
        catalog: Arc<dyn ActivityCatalog>,
        namespace: String,
        task_queue: String,
        cancel_grace: Duration,
        slots: usize,
    ) -> Self {
        metrics::gauge!(SLOTS_MAX).set(slots as f64);
        let dispatcher = Self {
            core,
            runtime,
            catalog,
            namespace,
            task_queue,
            cancel_grace,
            running: Mutex::default(),
            slots,
            callers: CallerLabels::default(),
        };
        dispatcher.slots_in_use(0);
        dispatcher
    }

    /// The failure of a task whose type this host does not serve (retryable: a deploy may
    /// come, or another host may serve it).
    fn not_deployed(&self, activity_type: &str) -> ActivityExecutionResult {
        let deployed = self.catalog.names();
        tracing::warn!("activity type is not deployed");
        // No label: any Temporal client may send any type name (the log line has it).
        metrics::counter!(NOT_DEPLOYED).increment(1);
        failed(&ActivityFailure::new(
            ACTIVITY_NOT_DEPLOYED,
            format!(
                "activity type {activity_type:?} is not deployed on this host (deployed: {}); deploy it and the task will be retried",
                if deployed.is_empty() { "none".into() } else { deployed.join(", ") }
            ),
            false,
        ))
    }

    /// Keeps the slot gauges true with `in_use` tasks running.
    fn slots_in_use(&self, in_use: usize) {
        metrics::gauge!(SLOTS_IN_USE).set(in_use as f64);
        metrics::gauge!(SLOTS_AVAILABLE).set(self.slots.saturating_sub(in_use) as f64);
    }

    fn dispatch(self: &Arc<Self>, task: ActivityTask) {
        match task.variant {
            Some(activity_task::Variant::Start(start)) => self.start(task.task_token, start),
            Some(activity_task::Variant::Cancel(cancel)) => self.cancel(&task.task_token, cancel),
            None => tracing::warn!("activity task without a variant"),
        }
    }

    fn start(self: &Arc<Self>, token: Vec<u8>, start: Start) {
        let cancellation = Cancellation::default();
        let interrupt = Arc::new(Notify::new());
        if let Ok(mut r) = self.running.lock() {
            r.insert(
                token.clone(),
                Running {
                    cancellation: cancellation.clone(),
                    interrupt: interrupt.clone(),
                },
            );
            self.slots_in_use(r.len());
        }
        let span = tracing::info_span!(
            "activity",
            activity_type = start.activity_type.as_str(),
            activity_id = start.activity_id.as_str(),
            workflow_id = start
                .workflow_execution
                .as_ref()
                .map(|w| w.workflow_id.as_str())
                .unwrap_or(""),
            run_id = start
                .workflow_execution
                .as_ref()
                .map(|w| w.run_id.as_str())
                .unwrap_or(""),
            attempt = start.attempt,
            local = start.is_local,
            version = tracing::field::Empty,
        );
        let me = self.clone();
        tokio::spawn(
            async move {
                let result = me.execute(&token, start, cancellation, interrupt).await;
                if let Ok(mut r) = me.running.lock() {
                    r.remove(&token);
                    me.slots_in_use(r.len());
                }
                let completion = ActivityTaskCompletion {
                    task_token: token,
                    result: Some(result),
                };
                if let Err(e) = me.core.complete_activity_task(completion).await {
                    tracing::warn!(error = %e, "could not complete the activity task");
                }
            }
            .instrument(span),
        );
    }

    fn cancel(&self, token: &[u8], cancel: Cancel) {
        let Some((cancellation, interrupt)) = self.running.lock().ok().and_then(|r| {
            r.get(token)
                .map(|x| (x.cancellation.clone(), x.interrupt.clone()))
        }) else {
            return;
        };
        cancellation.cancel();
        let reason = ActivityCancelReason::try_from(cancel.reason)
            .unwrap_or(ActivityCancelReason::Cancelled);
        // A timed-out or vanished activity cannot report anything any more: stop it now.
        // A cancelled one gets a grace period to notice and stop by itself.
        let grace = match reason {
            ActivityCancelReason::Cancelled
            | ActivityCancelReason::Paused
            | ActivityCancelReason::Reset => self.cancel_grace,
            _ => Duration::ZERO,
        };
        tracing::info!(
            ?reason,
            grace_ms = grace.as_millis() as u64,
            "activity cancellation requested"
        );
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            interrupt.notify_one();
        });
    }

    async fn execute(
        &self,
        token: &[u8],
        start: Start,
        cancellation: Cancellation,
        interrupt: Arc<Notify>,
    ) -> ActivityExecutionResult {
        let info = self.info(&start);
        let key = CallKey {
            workflow_id: info.workflow_id.clone(),
            run_id: info.run_id.clone(),
            activity_id: info.activity_id.clone(),
        };
        let component = match self.catalog.resolve(&start.activity_type, &key).await {
            Ok(component) => component,
            Err(Unresolved::Unavailable(why)) => {
                tracing::warn!(
                    reason = why.as_str(),
                    "the call's version is not available now"
                );
                return failed(&ActivityFailure::new(
                    VERSION_UNAVAILABLE,
                    format!(
                        "activity type {:?}: {why}; the task will be retried",
                        start.activity_type
                    ),
                    false,
                ));
            }
            Err(Unresolved::NotDeployed) => return self.not_deployed(&start.activity_type),
        };
        tracing::Span::current().record("version", component.digest().as_str());
        let args = match payload::args_to_json(&start.input) {
            Ok(a) => a,
            Err(e) => return failed(&ActivityFailure::new(INVALID_PAYLOAD, e.to_string(), true)),
        };
        let last_heartbeat_details = start
            .heartbeat_details
            .first()
            .and_then(payload::to_json_text);
        let heartbeats = (!start.is_local).then(|| {
            ThrottledHeartbeats::new(
                self.core.clone(),
                token.to_vec(),
                last_heartbeat_details.clone(),
            )
        });
        // With a heartbeat timeout, the host heartbeats for the guest while it runs: a live
        // guest that does not heartbeat is not timed out, and a host that dies is noticed
        // after the heartbeat timeout instead of the start-to-close timeout.
        let keep_alive = heartbeats
            .clone()
            .zip(set_duration(&start.heartbeat_timeout))
            .map(|(h, timeout)| {
                let every = (timeout / 3).clamp(FORWARD_INTERVAL, Duration::from_secs(10));
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(every);
                    // The first tick is at once: the attempt has just started.
                    tick.tick().await;
                    loop {
                        tick.tick().await;
                        h.keep_alive();
                    }
                })
            });
        let call = CallContext {
            info,
            last_heartbeat_details,
            // A local activity has no heartbeats to send: it runs inside a workflow task.
            heartbeats: heartbeats
                .clone()
                .map(|h| Arc::new(h) as Arc<dyn HeartbeatSink>),
            cancellation: cancellation.clone(),
        };
        let outcome = tokio::select! {
            r = self.runtime.invoke_metered(&component, &args, call) => Some(r),
            _ = interrupt.notified() => None,
        };
        if let Some(k) = keep_alive {
            k.abort();
        }
        // The last details the guest recorded reach Temporal before the task completes.
        if let Some(h) = &heartbeats {
            h.close();
        }
        if let Some((r, usage)) = &outcome {
            let caller = crate::billing::caller(&start.header_fields, &start.workflow_type);
            self.callers
                .record(&start.activity_type, &caller, usage, r.is_err());
            // Before the task completes: a candidate aborted by this failure is gone before
            // the retry is scheduled.
            self.catalog
                .finished(Finished {
                    activity_type: &start.activity_type,
                    digest: component.digest(),
                    failure: r.as_ref().err(),
                    usage,
                    caller: &caller,
                })
                .await;
        }
        let outcome = outcome.map(|(r, usage)| r.map(|inv| (inv, usage)));
        match (outcome, cancellation.is_cancelled()) {
            (None, _) => {
                tracing::info!("activity interrupted after cancellation");
                ActivityExecutionResult::cancel_from_details(None)
            }
            (Some(r), true) => {
                tracing::info!(finished = r.is_ok(), "activity stopped after cancellation");
                ActivityExecutionResult::cancel_from_details(
                    r.ok().map(|(i, _)| payload::from_json(&i.output)),
                )
            }
            (Some(Ok((inv, usage))), false) => {
                tracing::info!(
                    duration_ms = inv.total_time.as_secs_f64() * 1000.0,
                    cpu_ms = usage.cpu.as_secs_f64() * 1000.0,
                    peak_memory_bytes = inv.peak_memory_bytes,
                    "activity completed"
                );
                let mut p = payload::from_json(&inv.output);
                p.metadata.insert(
                    payload::VERSION_METADATA.into(),
                    component.digest().as_str().as_bytes().to_vec(),
                );
                if let Ok(bill) = serde_json::to_vec(&usage.view()) {
                    p.metadata.insert(payload::USAGE_METADATA.into(), bill);
                }
                ActivityExecutionResult::ok(p)
            }
            (Some(Err(f)), false) => {
                tracing::info!(
                    failure_type = f.kind.as_str(),
                    non_retryable = f.non_retryable,
                    message = f.message.as_str(),
                    "activity failed"
                );
                failed(&f)
            }
        }
    }

    fn info(&self, start: &Start) -> ActivityInfo {
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let wf = start.workflow_execution.as_ref();
        let now = SystemTime::now();
        // Measured from now, not from the server's start time: the task just arrived and the
        // host's clock may differ from the server's.
        let attempt_deadline = set_duration(&start.start_to_close_timeout).map(|d| now + d);
        // The overall deadline counts from the first schedule; one already past on this
        // host's clock is left to the server to enforce.
        let overall_deadline = set_duration(&start.schedule_to_close_timeout)
            .and_then(|d| {
                start
                    .scheduled_time
                    .and_then(|t| SystemTime::try_from(t).ok())
                    .map(|s| s + d)
            })
            .filter(|deadline| *deadline > now);
        let deadline = match (attempt_deadline, overall_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        ActivityInfo {
            activity_id: start.activity_id.clone(),
            activity_type: start.activity_type.clone(),
            workflow_id: wf.and_then(|w| non_empty(&w.workflow_id)),
            run_id: wf.and_then(|w| non_empty(&w.run_id)),
            namespace: non_empty(&start.workflow_namespace)
                .unwrap_or_else(|| self.namespace.clone()),
            task_queue: self.task_queue.clone(),
            attempt: start.attempt.max(1),
            deadline,
        }
    }
}

/// A protobuf duration, `None` when absent or zero (protobuf's "unset").
fn set_duration<D: Clone>(d: &Option<D>) -> Option<Duration>
where
    Duration: TryFrom<D>,
{
    d.clone()
        .and_then(|d| Duration::try_from(d).ok())
        .filter(|d| !d.is_zero())
}

/// Polls activity tasks until the core worker shuts down, dispatching each.
pub async fn run(dispatcher: Arc<Dispatcher>) {
    loop {
        match dispatcher.core.poll_activity_task().await {
            Ok(task) => dispatcher.dispatch(task),
            Err(temporalio_sdk_core::PollError::ShutDown) => break,
            Err(e) => {
                tracing::warn!(error = %e, "activity poll failed; polling again");
                tokio::time::sleep(POLL_ERROR_BACKOFF).await;
            }
        }
    }
    tracing::info!("activity poller stopped");
}

/// A host or guest failure as a Temporal application failure.
pub fn to_temporal_failure(f: &ActivityFailure) -> Failure {
    Failure {
        message: f.message.clone(),
        source: FAILURE_SOURCE.into(),
        failure_info: Some(FailureInfo::ApplicationFailureInfo(
            ApplicationFailureInfo {
                r#type: f.kind.clone(),
                non_retryable: f.non_retryable,
                details: f.details.as_ref().map(|d| Payloads {
                    payloads: vec![payload::from_json(d)],
                }),
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

fn failed(f: &ActivityFailure) -> ActivityExecutionResult {
    ActivityExecutionResult::fail(to_temporal_failure(f))
}
