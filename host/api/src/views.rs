//! The typed answers of the workflow routes: what the handlers build and what clients (the
//! CLI among them) read back. Field names and presence are the API's contract.

use activity_worker::workflow::{Progress, UserOutcome};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The ids of a started (or already open) run.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Started {
    /// The workflow id.
    pub workflow_id: String,
    /// The run id.
    pub run_id: String,
}

/// One run as `GET /api/v1/workflows/user/{workflow_id}` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkflowView {
    /// The workflow id.
    pub workflow_id: String,
    /// The run id.
    pub run_id: String,
    /// `RUNNING`, `COMPLETED`, `FAILED`, `CANCELED`, `TERMINATED`, `TIMED_OUT`, ...
    pub status: String,
    /// Start, ms since the Unix epoch.
    pub start_time_ms: Option<u64>,
    /// Close, ms since the Unix epoch; `null` while running.
    pub close_time_ms: Option<u64>,
    /// While running: the steps done and the one running (when a worker answers the query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// Once completed: the outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<UserOutcome>,
    /// Once failed, cancelled, terminated or timed out: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<FailureView>,
}

/// A Temporal failure, with its cause chain.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FailureView {
    /// The message.
    pub message: String,
    /// The failure type: an application failure's own type, or `Timeout`,
    /// `ActivityFailure`, `Canceled`, `Terminated`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// For an application failure: true when retrying cannot help.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_retryable: Option<bool>,
    /// For an application failure: its details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
    /// For a timeout: Temporal's timeout type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_type: Option<i32>,
    /// For an activity failure: the activity type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_type: Option<String>,
    /// What caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    pub cause: Option<Box<FailureView>>,
}

/// One run in a listing.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkflowSummary {
    /// The workflow id.
    pub workflow_id: String,
    /// The run id.
    pub run_id: String,
    /// Its status.
    pub status: String,
    /// Start, ms since the Unix epoch.
    pub start_time_ms: Option<u64>,
    /// Close, ms since the Unix epoch.
    pub close_time_ms: Option<u64>,
}

/// A page of `GET /api/v1/workflows/user`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkflowPage {
    /// The runs, newest first.
    pub workflows: Vec<WorkflowSummary>,
    /// Pass as `page_token` for the next page; `null` on the last.
    pub next_page_token: Option<String>,
}

/// The answer to a cancel.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CancelSent {
    /// The workflow id.
    pub workflow_id: String,
    /// The run the signal went to.
    pub run_id: String,
    /// Always `cancel`.
    pub signal: String,
}

/// What `/readyz` answers.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReadinessView {
    /// True when everything below is ready.
    pub ready: bool,
    /// `ok`, or `unavailable: ...` with the reason.
    pub temporal: String,
    /// `loaded` or `loading`.
    pub registry: String,
    /// `polling`, `not polling`, or `not in this process`.
    pub worker: String,
    /// True once the process is shutting down (`api.shutdown_delay_ms` before the listener
    /// closes).
    #[serde(default)]
    pub draining: bool,
    /// The Temporal server's version and the namespace's capabilities, once read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<activity_worker::server::ServerFacts>,
    /// What this host cannot do on that server (the host is ready all the same), in words
    /// an operator can act on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limitations: Vec<String>,
}

/// An invoked activity execution: the invoke answer, and `GET .../executions/{activity_id}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExecutionView {
    /// The execution's activity id.
    pub activity_id: String,
    /// Its run id.
    pub run_id: String,
    /// `RUNNING`, `COMPLETED`, `FAILED`, `CANCELED`, `TERMINATED`, `TIMED_OUT`.
    pub status: String,
    /// The attempt running or last run (from `executions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<i32>,
    /// Once completed: the activity's result, as its schema (`GET .../schema`) describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Once completed: the digest of the version that ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Once completed: what the attempt that completed cost, as the result's metadata
    /// (`activity-host-usage`) records it in Temporal's history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<activity_runtime::UsageView>,
    /// Once failed: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<FailureView>,
    /// While running after a failed attempt: that attempt's failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<FailureView>,
    /// While running (`202`): where to read it later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// A user as the `users` store holds it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredUserView {
    /// The user's id.
    pub user_id: String,
    /// Email address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// 1 when created, plus one per update.
    pub version: u32,
    /// Creation, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// Last change, ms since the Unix epoch.
    pub updated_at_ms: u64,
}
