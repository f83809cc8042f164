//! What an autoscaler needs from Temporal: the task queue's backlog (tasks waiting and the
//! age of the oldest) and its add and dispatch rates, read with `DescribeTaskQueue` (stats on)
//! for the workflow and the activity task queue, and kept as gauges. Every role with a
//! Temporal connection reads them, so an API host reports the backlog of a fleet scaled to
//! zero workers.

use std::time::Duration;

use temporalio_client::grpc::WorkflowService;
use temporalio_client::tonic::IntoRequest;
use temporalio_client::Client;
use temporalio_common::protos::temporal::api::enums::v1::{TaskQueueKind, TaskQueueType};
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_common::protos::temporal::api::workflowservice::v1::DescribeTaskQueueRequest;

/// The gauges, each by `task_queue` and `task_type` (`workflow`, `activity`).
pub mod metric {
    /// Tasks waiting in the queue (Temporal's approximate backlog count).
    pub const BACKLOG_TASKS: &str = "task_queue_backlog_tasks";
    /// Age of the oldest waiting task, in seconds (0 with no backlog).
    pub const BACKLOG_AGE: &str = "task_queue_backlog_age_seconds";
    /// Tasks added per second, over Temporal's last 30 s.
    pub const ADD_RATE: &str = "task_queue_add_rate";
    /// Tasks dispatched to workers per second, over Temporal's last 30 s.
    pub const DISPATCH_RATE: &str = "task_queue_dispatch_rate";
    /// Every metric of this module.
    pub const ALL: &[&str] = &[BACKLOG_TASKS, BACKLOG_AGE, ADD_RATE, DISPATCH_RATE];
}

/// One task queue type's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Backlog {
    /// `workflow` or `activity`.
    pub task_type: &'static str,
    /// Tasks waiting.
    pub tasks: i64,
    /// Age of the oldest waiting task.
    pub age: Duration,
    /// Tasks added per second.
    pub add_rate: f32,
    /// Tasks dispatched per second.
    pub dispatch_rate: f32,
}

const TYPES: [(TaskQueueType, &str); 2] = [
    (TaskQueueType::Workflow, "workflow"),
    (TaskQueueType::Activity, "activity"),
];

/// Reads the backlog of `task_queue`'s workflow and activity queues.
pub async fn describe(
    client: &Client,
    namespace: &str,
    task_queue: &str,
) -> Result<Vec<Backlog>, temporalio_client::tonic::Status> {
    let mut out = Vec::with_capacity(TYPES.len());
    for (ty, task_type) in TYPES {
        let request = DescribeTaskQueueRequest {
            namespace: namespace.to_string(),
            task_queue: Some(TaskQueue {
                name: task_queue.to_string(),
                kind: TaskQueueKind::Normal as i32,
                normal_name: String::new(),
            }),
            task_queue_type: ty as i32,
            report_stats: true,
            ..Default::default()
        };
        let answer =
            WorkflowService::describe_task_queue(&mut client.clone(), request.into_request())
                .await?
                .into_inner();
        let stats = answer.stats.unwrap_or_default();
        let age = stats
            .approximate_backlog_age
            .map(|d| Duration::new(d.seconds.max(0) as u64, d.nanos.max(0) as u32))
            .unwrap_or_default();
        out.push(Backlog {
            task_type,
            tasks: stats.approximate_backlog_count,
            age,
            add_rate: stats.tasks_add_rate,
            dispatch_rate: stats.tasks_dispatch_rate,
        });
    }
    Ok(out)
}

/// Sets the gauges from `backlog`.
pub fn record(task_queue: &str, backlog: &[Backlog]) {
    for b in backlog {
        let labels = [
            ("task_queue", task_queue.to_string()),
            ("task_type", b.task_type.to_string()),
        ];
        metrics::gauge!(metric::BACKLOG_TASKS, &labels).set(b.tasks as f64);
        metrics::gauge!(metric::BACKLOG_AGE, &labels).set(b.age.as_secs_f64());
        metrics::gauge!(metric::ADD_RATE, &labels).set(f64::from(b.add_rate));
        metrics::gauge!(metric::DISPATCH_RATE, &labels).set(f64::from(b.dispatch_rate));
    }
}

/// Reads the backlog every `every`, for as long as the future runs. A failed read keeps the
/// last figures and is logged at debug level: Temporal's own unavailability shows on
/// `/readyz`.
pub async fn watch(client: Client, namespace: String, task_queue: String, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match describe(&client, &namespace, &task_queue).await {
            Ok(backlog) => record(&task_queue, &backlog),
            Err(e) => tracing::debug!(error = %e.message(), "cannot read the task queue's backlog"),
        }
    }
}
