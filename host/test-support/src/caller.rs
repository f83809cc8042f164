//! A workflow that calls any activity by type name with JSON arguments through
//! `UntypedActivity`, as a workflow in another SDK would, on the host's task queue. It runs
//! on a plain SDK worker of its own, so the host is reached only through Temporal.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use temporalio_client::{Client, WorkflowGetResultOptions, WorkflowStartOptions};
use temporalio_common::data_converters::RawValue;
use temporalio_common::protos::temporal::api::failure::v1::{failure::FailureInfo, Failure};
use temporalio_common::{RetryPolicy, UntypedActivity};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityCancellationType, ActivityExecutionError, ActivityOptions, CancellableFuture, Worker,
    WorkerOptions, WorkflowContext, WorkflowResult,
};

/// What to call and how.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallRequest {
    pub activity: String,
    pub args: Vec<Value>,
    pub task_queue: String,
    pub start_to_close_ms: u64,
    pub heartbeat_timeout_ms: Option<u64>,
    pub maximum_attempts: u32,
    pub cancel_after_ms: Option<u64>,
}

impl CallRequest {
    pub fn new(activity: &str, args: Vec<Value>, task_queue: &str) -> Self {
        Self {
            activity: activity.into(),
            args,
            task_queue: task_queue.into(),
            start_to_close_ms: 10_000,
            heartbeat_timeout_ms: None,
            maximum_attempts: 5,
            cancel_after_ms: None,
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CallResult {
    pub output: Option<Value>,
    /// The version that answered, from the result's `activity-host-version` metadata.
    pub version: Option<String>,
    pub cancelled: bool,
    /// Failure types and messages from the outermost failure inwards.
    pub failures: Vec<(String, String)>,
}

#[workflow]
#[derive(Default)]
pub struct CallByName;

fn failure_chain(f: Option<&Failure>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur = f;
    while let Some(f) = cur {
        let kind = match &f.failure_info {
            Some(FailureInfo::ApplicationFailureInfo(a)) => a.r#type.clone(),
            Some(FailureInfo::TimeoutFailureInfo(t)) => format!("Timeout:{}", t.timeout_type),
            Some(FailureInfo::ActivityFailureInfo(_)) => "ActivityFailure".into(),
            Some(FailureInfo::CanceledFailureInfo(_)) => "Canceled".into(),
            _ => "Other".into(),
        };
        out.push((kind, f.message.clone()));
        cur = f.cause.as_deref();
    }
    out
}

#[workflow_methods]
impl CallByName {
    #[run(name = "CallByName")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        req: CallRequest,
    ) -> WorkflowResult<CallResult> {
        let call = ctx.execute_activity(
            UntypedActivity::new(req.activity.clone()),
            RawValue::new(arguments(&req)),
            options(&req),
        );
        if let Some(ms) = req.cancel_after_ms {
            ctx.timer(Duration::from_millis(ms)).await;
            call.cancel();
        }
        Ok(outcome(call.await))
    }
}

fn arguments(
    req: &CallRequest,
) -> Vec<temporalio_common::protos::temporal::api::common::v1::Payload> {
    req.args
        .iter()
        .map(activity_worker::payload::from_json)
        .collect()
}

fn options(req: &CallRequest) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_millis(req.start_to_close_ms))
        .task_queue(req.task_queue.clone())
        .maybe_heartbeat_timeout(req.heartbeat_timeout_ms.map(Duration::from_millis))
        .cancellation_type(ActivityCancellationType::WaitCancellationCompleted)
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_millis(200))
                .backoff_coefficient(1.0)
                .maximum_interval(Duration::from_millis(200))
                .maximum_attempts(req.maximum_attempts)
                .build(),
        )
        .build()
}

fn outcome(result: Result<RawValue, ActivityExecutionError>) -> CallResult {
    match result {
        Ok(raw) => CallResult {
            output: raw
                .payloads
                .first()
                .map(|p| activity_worker::payload::to_json(0, p).expect("caller")),
            version: raw.payloads.first().and_then(|p| {
                p.metadata
                    .get(activity_worker::payload::VERSION_METADATA)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            }),
            ..Default::default()
        },
        Err(ActivityExecutionError::Cancelled(c)) => CallResult {
            cancelled: true,
            failures: failure_chain(Some(c.failure())),
            ..Default::default()
        },
        Err(e) => CallResult {
            failures: failure_chain(e.failure()),
            ..Default::default()
        },
    }
}

/// What [`CallSeries`] does: `calls` calls, waiting for the `go` signal after the first
/// when `pause_after_first`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeriesRequest {
    pub call: CallRequest,
    pub calls: u32,
    pub pause_after_first: bool,
}

/// Calls one activity several times in one run, optionally pausing for a signal after the
/// first call: a run that spans a deploy.
#[workflow]
#[derive(Default)]
pub struct CallSeries {
    go: bool,
}

#[workflow_methods]
impl CallSeries {
    #[run(name = "CallSeries")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        req: SeriesRequest,
    ) -> WorkflowResult<Vec<CallResult>> {
        let mut results = Vec::new();
        for i in 0..req.calls {
            if i == 1 && req.pause_after_first {
                let _ = ctx.wait_condition(|s| s.go).await;
            }
            let call = ctx.execute_activity(
                UntypedActivity::new(req.call.activity.clone()),
                RawValue::new(arguments(&req.call)),
                options(&req.call),
            );
            results.push(outcome(call.await));
        }
        Ok(results)
    }

    /// Lets a paused run go on.
    #[signal]
    pub fn go(&mut self, _ctx: &mut temporalio_sdk::SyncWorkflowContext<Self>) {
        self.go = true;
    }
}

/// Runs a plain SDK worker with `CallByName` on `queue` until the returned sender is dropped.
pub fn start_caller_worker(address: &str, queue: &str) -> tokio::sync::oneshot::Sender<()> {
    let temporal = activity_worker::TemporalSettings {
        address: address.into(),
        ..Default::default()
    };
    start_caller_worker_on(temporal, queue)
}

/// [`start_caller_worker`] on the Temporal `temporal` names (TLS included).
pub fn start_caller_worker_on(
    temporal: activity_worker::TemporalSettings,
    queue: &str,
) -> tokio::sync::oneshot::Sender<()> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let queue = queue.to_string();
    crate::run_on_own_runtime(move || async move {
        let client = activity_worker::connect_to(&temporal)
            .await
            .expect("caller");
        let runtime =
            temporalio_sdk::Runtime::from_current_tokio(Default::default()).expect("caller");
        let options = WorkerOptions::new(queue)
            .register_workflow::<CallByName>()
            .expect("caller")
            .register_workflow::<CallSeries>()
            .expect("caller")
            .build();
        let mut worker = Worker::new(&runtime, client, options).expect("caller");
        let stop = worker.shutdown_handle();
        let run = worker.run();
        tokio::pin!(run);
        tokio::select! {
            r = &mut run => r.expect("caller"),
            _ = rx => { stop(); run.await.ok(); }
        }
    });
    tx
}

/// Starts `CallByName` on `queue` and waits for its result.
pub async fn call(client: &Client, queue: &str, id: &str, req: CallRequest) -> CallResult {
    let handle = client
        .start_workflow(
            CallByName::run,
            req,
            WorkflowStartOptions::new(queue, id).build(),
        )
        .await
        .expect("caller");
    handle
        .get_result(WorkflowGetResultOptions::default())
        .await
        .expect("caller")
}
