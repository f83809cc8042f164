//! `activity-host:activity/context`: what a running activity knows about its Temporal task.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use wasmtime::component::{HasData, Linker};

use super::bindings::activity_host::activity::{context, types};
use crate::ComponentDigest;

/// Facts about one activity execution, handed to the guest by `context.info`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityInfo {
    /// Temporal activity id.
    pub activity_id: String,
    /// Activity type name.
    pub activity_type: String,
    /// Workflow id, absent for standalone activities.
    pub workflow_id: Option<String>,
    /// Workflow run id, absent for standalone activities.
    pub run_id: Option<String>,
    /// Namespace.
    pub namespace: String,
    /// Task queue.
    pub task_queue: String,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// When this attempt must finish.
    pub deadline: Option<SystemTime>,
}

/// Receives the heartbeats a guest records. The worker forwards them to Temporal.
pub trait HeartbeatSink: Send + Sync {
    /// Records a heartbeat with optional JSON details.
    fn heartbeat(&self, details: Option<String>);
}

/// A cancellation flag shared between the worker and a running call.
#[derive(Debug, Clone, Default)]
pub struct Cancellation(Arc<AtomicBool>);

impl Cancellation {
    /// Marks the call as cancelled; the guest sees it through `is-cancelled`.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// True once [`Cancellation::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Everything the caller hands to one activity call besides its arguments.
#[derive(Clone, Default)]
pub struct CallContext {
    /// Facts about the execution.
    pub info: ActivityInfo,
    /// Details of the previous attempt's last heartbeat (JSON text).
    pub last_heartbeat_details: Option<String>,
    /// Where heartbeats go; `None` drops them.
    pub heartbeats: Option<Arc<dyn HeartbeatSink>>,
    /// Set by the caller to ask the guest to stop.
    pub cancellation: Cancellation,
}

impl CallContext {
    /// A context for a call with only an activity type, as tests and local invocations use.
    pub fn for_type(activity_type: &str) -> Self {
        Self {
            info: ActivityInfo {
                activity_id: "local".into(),
                activity_type: activity_type.into(),
                namespace: "default".into(),
                task_queue: "local".into(),
                attempt: 1,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// Time left until the deadline, if there is one.
    pub fn remaining(&self) -> Option<Duration> {
        self.info.deadline.map(|d| {
            d.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        })
    }
}

/// What `activity-host:activity/context` sees of one call: its context and the version
/// running.
pub struct ContextView<'a> {
    /// The call's context.
    pub call: &'a CallContext,
    /// The version running.
    pub version: &'a ComponentDigest,
}

/// The interfaces of this room, for the import check.
pub(crate) const OFFERS: &[(&str, crate::grants::Capability)] = &[
    (
        "activity-host:activity/types",
        crate::grants::Capability::ActivityContext,
    ),
    (
        "activity-host:activity/context",
        crate::grants::Capability::ActivityContext,
    ),
];

/// The capability, for the linker.
pub struct ActivityContext;

impl HasData for ActivityContext {
    type Data<'a> = ContextView<'a>;
}

/// Adds `activity-host:activity/types` and `/context` to `linker`, reading each call's
/// context through `get`.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> ContextView<'_>,
) -> wasmtime::Result<()> {
    types::add_to_linker::<T, ActivityContext>(linker, get)?;
    context::add_to_linker::<T, ActivityContext>(linker, get)
}

impl types::Host for ContextView<'_> {}

impl context::Host for ContextView<'_> {
    fn info(&mut self) -> wasmtime::Result<context::ActivityInfo> {
        let info = &self.call.info;
        Ok(context::ActivityInfo {
            activity_id: info.activity_id.clone(),
            activity_type: info.activity_type.clone(),
            workflow_id: info.workflow_id.clone(),
            run_id: info.run_id.clone(),
            namespace: info.namespace.clone(),
            task_queue: info.task_queue.clone(),
            attempt: info.attempt,
            deadline_ms: info.deadline.and_then(|d| {
                d.duration_since(SystemTime::UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_millis() as u64)
            }),
            version: self.version.to_string(),
        })
    }

    fn heartbeat(&mut self, details: Option<String>) -> wasmtime::Result<()> {
        if let Some(sink) = &self.call.heartbeats {
            sink.heartbeat(details);
        }
        Ok(())
    }

    fn last_heartbeat_details(&mut self) -> wasmtime::Result<Option<String>> {
        Ok(self.call.last_heartbeat_details.clone())
    }

    fn is_cancelled(&mut self) -> wasmtime::Result<bool> {
        Ok(self.call.cancellation.is_cancelled())
    }
}
