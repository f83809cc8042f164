//! Measures how long a Temporal server holds the tasks that a workflow task's completion
//! creates (the activity it schedules, the workflow task after the activity) before a worker
//! can poll them. `history.transferProcessorMaxPollRPS` sets that wait: at its default of 20
//! reads per second per history shard, a one-shard dev server holds each such task about
//! 40 ms; raised, a few milliseconds.
//!
//! Each round runs one tiny workflow by hand on a private task queue: start it, complete its
//! first workflow task with one activity, time how long the activity takes to reach an open
//! activity poll, complete it, time how long the next workflow task takes to reach an open
//! workflow poll, and complete the workflow. The first rounds use up the limiter's burst
//! (20 tasks at rest) and are not counted. The probe's workflows (type and id prefix `activity-host-dispatch-probe`)
//! stay in the namespace's history like any other.

use std::time::{Duration, Instant};

use temporalio_client::grpc::WorkflowService;
use temporalio_client::tonic::IntoRequest;
use temporalio_client::Client;
use temporalio_common::protos::temporal::api::command::v1::{
    command::Attributes, Command, CompleteWorkflowExecutionCommandAttributes,
    ScheduleActivityTaskCommandAttributes,
};
use temporalio_common::protos::temporal::api::common::v1::{ActivityType, WorkflowType};
use temporalio_common::protos::temporal::api::enums::v1::{CommandType, TaskQueueKind};
use temporalio_common::protos::temporal::api::taskqueue::v1::{
    StickyExecutionAttributes, TaskQueue,
};
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    PollActivityTaskQueueRequest, PollWorkflowTaskQueueRequest,
    RespondActivityTaskCompletedRequest, RespondWorkflowTaskCompletedRequest,
    StartWorkflowExecutionRequest,
};
use tokio::task::JoinHandle;

/// Rounds run before measuring: four tasks each, enough to use up the limiter's burst of 20
/// (a server at rest lets that many through at once).
const WARM_ROUNDS: usize = 8;
/// Rounds measured (two waits each).
const MEASURED_ROUNDS: usize = 6;
/// Time for a poll to reach matching before the task it waits for is created.
/// Empty poll answers tolerated in a row before the probe gives up.
const EMPTY_POLLS: usize = 5;
const POLL_HEAD_START: Duration = Duration::from_millis(20);
/// Above this median wait, the server runs with the default transfer-queue limit.
pub const SLOW_DISPATCH: Duration = Duration::from_millis(20);
/// Identity, workflow and activity type, and id prefix of the probe.
const PROBE: &str = "activity-host-dispatch-probe";

/// Why the probe could not measure.
#[derive(Debug, thiserror::Error)]
#[error("dispatch probe: {0}")]
pub struct ProbeError(String);

fn rpc(what: &'static str) -> impl Fn(temporalio_client::tonic::Status) -> ProbeError {
    move |e| ProbeError(format!("{what}: {}", e.message()))
}

/// The median time a task created by a workflow task's completion waits before a poll
/// receives it.
pub async fn dispatch_wait(client: &Client, namespace: &str) -> Result<Duration, ProbeError> {
    let mut waits = dispatch_rounds(client, namespace, WARM_ROUNDS + MEASURED_ROUNDS)
        .await?
        .split_off(WARM_ROUNDS * 2);
    waits.sort();
    Ok(waits[waits.len() / 2])
}

/// Runs `rounds` of the probe's workflow one after another (each hands out two tasks, the
/// activity and the next workflow task, only after the previous one was done) and answers
/// every wait, in order.
pub async fn dispatch_rounds(
    client: &Client,
    namespace: &str,
    rounds: usize,
) -> Result<Vec<Duration>, ProbeError> {
    let probe = Probe {
        client: client.clone(),
        namespace: namespace.to_string(),
        queue: format!("{PROBE}-{}", uuid::Uuid::new_v4()),
    };
    let mut waits = Vec::with_capacity(rounds * 2);
    for _ in 0..rounds {
        waits.extend(probe.round().await?);
    }
    Ok(waits)
}

struct Probe {
    client: Client,
    namespace: String,
    queue: String,
}

/// The probe's sticky queue, as a worker's: the workflow tasks after the first go there.
fn sticky_name(queue: &str) -> String {
    format!("{queue}-sticky")
}

/// A poll's answer and when it arrived.
type Polled<T> = JoinHandle<(Result<T, ProbeError>, Instant)>;

impl Probe {
    fn task_queue(&self) -> Option<TaskQueue> {
        Some(TaskQueue {
            name: self.queue.clone(),
            kind: TaskQueueKind::Normal as i32,
            normal_name: String::new(),
        })
    }

    fn sticky_queue(&self) -> Option<TaskQueue> {
        Some(TaskQueue {
            name: sticky_name(&self.queue),
            kind: TaskQueueKind::Sticky as i32,
            normal_name: self.queue.clone(),
        })
    }

    /// A workflow task poll on the normal queue, or on the sticky one, started now.
    fn poll_workflow_task(&self, sticky: bool) -> Polled<Vec<u8>> {
        let mut client = self.client.clone();
        let request = PollWorkflowTaskQueueRequest {
            namespace: self.namespace.clone(),
            task_queue: if sticky {
                self.sticky_queue()
            } else {
                self.task_queue()
            },
            identity: PROBE.into(),
            ..Default::default()
        };
        tokio::spawn(async move {
            let answer =
                WorkflowService::poll_workflow_task_queue(&mut client, request.into_request())
                    .await
                    .map(|r| r.into_inner().task_token)
                    .map_err(rpc("poll workflow task"));
            (answer, Instant::now())
        })
    }

    /// An activity task poll, started now.
    fn poll_activity_task(&self) -> Polled<Vec<u8>> {
        let mut client = self.client.clone();
        let request = PollActivityTaskQueueRequest {
            namespace: self.namespace.clone(),
            task_queue: self.task_queue(),
            identity: PROBE.into(),
            ..Default::default()
        };
        tokio::spawn(async move {
            let answer =
                WorkflowService::poll_activity_task_queue(&mut client, request.into_request())
                    .await
                    .map(|r| r.into_inner().task_token)
                    .map_err(rpc("poll activity task"));
            (answer, Instant::now())
        })
    }

    /// Waits for a poll; its task token and when it arrived.
    /// The task `polled` receives. A poll may come back without one (Temporal answers long
    /// polls empty now and then, more often on a loaded machine); then `again` polls anew,
    /// a few times, as a worker would.
    async fn received(
        mut polled: Polled<Vec<u8>>,
        again: impl Fn() -> Polled<Vec<u8>>,
    ) -> Result<(Vec<u8>, Instant), ProbeError> {
        for _ in 0..EMPTY_POLLS {
            let (answer, at) = polled.await.map_err(|e| ProbeError(format!("poll: {e}")))?;
            let token = answer?;
            if !token.is_empty() {
                return Ok((token, at));
            }
            polled = again();
        }
        Err(ProbeError(format!(
            "{EMPTY_POLLS} polls in a row came back without a task"
        )))
    }

    async fn complete_workflow_task(
        &self,
        token: Vec<u8>,
        command: Command,
    ) -> Result<Instant, ProbeError> {
        let request = RespondWorkflowTaskCompletedRequest {
            task_token: token,
            namespace: self.namespace.clone(),
            identity: PROBE.into(),
            commands: vec![command],
            sticky_attributes: Some(StickyExecutionAttributes {
                worker_task_queue: self.sticky_queue(),
                schedule_to_start_timeout: Duration::from_secs(10).try_into().ok(),
            }),
            ..Default::default()
        };
        WorkflowService::respond_workflow_task_completed(
            &mut self.client.clone(),
            request.into_request(),
        )
        .await
        .map_err(rpc("complete workflow task"))?;
        Ok(Instant::now())
    }

    /// One workflow: answers the activity's wait and the second workflow task's wait.
    async fn round(&self) -> Result<[Duration; 2], ProbeError> {
        let first = self.poll_workflow_task(false);
        tokio::time::sleep(POLL_HEAD_START).await;
        let start = StartWorkflowExecutionRequest {
            namespace: self.namespace.clone(),
            workflow_id: format!("{PROBE}-{}", uuid::Uuid::new_v4()),
            workflow_type: Some(WorkflowType { name: PROBE.into() }),
            task_queue: self.task_queue(),
            identity: PROBE.into(),
            request_id: uuid::Uuid::new_v4().to_string(),
            workflow_execution_timeout: Duration::from_secs(60).try_into().ok(),
            ..Default::default()
        };
        WorkflowService::start_workflow_execution(&mut self.client.clone(), start.into_request())
            .await
            .map_err(rpc("start"))?;
        let (token, _) = Self::received(first, || self.poll_workflow_task(false)).await?;

        // The first workflow task schedules one activity (not eagerly: it must go through
        // the server's task queue, as an activity for another host would).
        let activity = self.poll_activity_task();
        tokio::task::yield_now().await;
        let schedule = Command {
            command_type: CommandType::ScheduleActivityTask as i32,
            attributes: Some(Attributes::ScheduleActivityTaskCommandAttributes(
                ScheduleActivityTaskCommandAttributes {
                    activity_id: "1".into(),
                    activity_type: Some(ActivityType { name: PROBE.into() }),
                    task_queue: self.task_queue(),
                    start_to_close_timeout: Duration::from_secs(10).try_into().ok(),
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
        let scheduled = self.complete_workflow_task(token, schedule).await?;
        let (activity_token, activity_at) =
            Self::received(activity, || self.poll_activity_task()).await?;

        let second = self.poll_workflow_task(true);
        tokio::task::yield_now().await;
        let done = RespondActivityTaskCompletedRequest {
            task_token: activity_token,
            namespace: self.namespace.clone(),
            identity: PROBE.into(),
            ..Default::default()
        };
        WorkflowService::respond_activity_task_completed(
            &mut self.client.clone(),
            done.into_request(),
        )
        .await
        .map_err(rpc("complete activity"))?;
        let completed = Instant::now();
        // When the server saw no poller on the sticky queue yet (a loaded machine), it puts the
        // task on the normal queue (or moves it there after the sticky timeout): poll that.
        let (token, second_at) = Self::received(second, || self.poll_workflow_task(false)).await?;
        let finish = Command {
            command_type: CommandType::CompleteWorkflowExecution as i32,
            attributes: Some(Attributes::CompleteWorkflowExecutionCommandAttributes(
                CompleteWorkflowExecutionCommandAttributes::default(),
            )),
            ..Default::default()
        };
        self.complete_workflow_task(token, finish).await?;
        Ok([
            activity_at.saturating_duration_since(scheduled),
            second_at.saturating_duration_since(completed),
        ])
    }
}
