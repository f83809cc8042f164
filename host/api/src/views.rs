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
    #[schema(value_type = Option<Object>)]
    pub progress: Option<Progress>,
    /// Once completed: the outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
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
