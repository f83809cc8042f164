//! `POST /api/v1/workflows/user` and `GET /api/v1/workflows/user/{workflow_id}`.

use std::sync::Arc;
use std::time::SystemTime;

use activity_worker::workflow::{Action, UserRequest};
use activity_worker::UserWorkflow;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use temporalio_client::errors::{
    WorkflowGetResultError, WorkflowInteractionError, WorkflowStartError,
};
use temporalio_client::{
    Client, WorkflowDescribeOptions, WorkflowExecutionInfo, WorkflowExecutionStatus,
    WorkflowGetResultOptions, WorkflowHandle, WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
    WorkflowQueryOptions, WorkflowStartOptions,
};

use temporalio_common::protos::temporal::api::failure::v1::{failure::FailureInfo, Failure};

use crate::json::ApiJson;
use crate::users::check_id;
use crate::{ApiError, ApiState};

/// Header whose value makes a request's workflow id unique beyond `user_id` and `action`.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The body of `POST /api/v1/workflows/user`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartUserWorkflow {
    user_id: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    action: Action,
}

/// The answer to a start.
#[derive(Debug, Serialize)]
pub struct Started {
    workflow_id: String,
    run_id: String,
}

/// The workflow id of a request: `user-{user_id}-{action}`, plus `-{key}` with an
/// `Idempotency-Key`. A retried request maps to the same id and finds the same run.
pub fn workflow_id(user_id: &str, action: Action, key: Option<&str>) -> String {
    match key {
        Some(k) => format!("user-{user_id}-{}-{k}", action.as_str()),
        None => format!("user-{user_id}-{}", action.as_str()),
    }
}

fn validate(body: &StartUserWorkflow) -> Result<(), ApiError> {
    check_id("user_id", &body.user_id)?;
    if body.action != Action::Delete {
        for (field, value) in [("email", &body.email), ("name", &body.name)] {
            if value.trim().is_empty() {
                return Err(ApiError::bad_request(
                    "missing_field",
                    format!("{field} is required for action {}", body.action.as_str()),
                ));
            }
        }
    }
    Ok(())
}

/// Starts `UserWorkflow`; a running workflow with the same id is answered instead of a new one.
pub async fn start(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<StartUserWorkflow>,
) -> Result<(StatusCode, Json<Started>), ApiError> {
    validate(&body)?;
    let key = match headers.get(IDEMPOTENCY_KEY) {
        Some(v) => {
            let k = v.to_str().map_err(|_| {
                ApiError::bad_request("invalid_header", "Idempotency-Key must be ASCII")
            })?;
            check_id("Idempotency-Key", k)?;
            Some(k.to_string())
        }
        None => None,
    };
    let id = workflow_id(&body.user_id, body.action, key.as_deref());
    let request = UserRequest {
        user_id: body.user_id,
        email: body.email,
        name: body.name,
        action: body.action,
    };
    let options = WorkflowStartOptions::new(state.task_queue.clone(), id.clone())
        .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
        .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicate)
        .build();
    let handle = state
        .client
        .start_workflow(UserWorkflow::run, request, options)
        .await
        .map_err(|e| match e {
            WorkflowStartError::PayloadConversion(e) => ApiError::internal(e.to_string()),
            other => {
                ApiError::temporal_unavailable(format!("could not start workflow {id}: {other}"))
            }
        })?;
    let run_id = handle.info().run_id.clone().unwrap_or_default();
    tracing::info!(
        workflow_id = id.as_str(),
        run_id = run_id.as_str(),
        "started UserWorkflow"
    );
    Ok((
        StatusCode::CREATED,
        Json(Started {
            workflow_id: id,
            run_id,
        }),
    ))
}

/// Query string of `GET /api/v1/workflows/user/{workflow_id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShowQuery {
    run_id: Option<String>,
}

fn status_name(status: WorkflowExecutionStatus) -> &'static str {
    match status {
        WorkflowExecutionStatus::Running => "RUNNING",
        WorkflowExecutionStatus::Completed => "COMPLETED",
        WorkflowExecutionStatus::Failed => "FAILED",
        WorkflowExecutionStatus::Canceled => "CANCELED",
        WorkflowExecutionStatus::Terminated => "TERMINATED",
        WorkflowExecutionStatus::ContinuedAsNew => "CONTINUED_AS_NEW",
        WorkflowExecutionStatus::TimedOut => "TIMED_OUT",
        WorkflowExecutionStatus::Paused => "PAUSED",
        _ => "UNSPECIFIED",
    }
}

fn millis(t: Option<SystemTime>) -> Option<u64> {
    t.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as u64)
}

fn interaction_error(id: &str, e: WorkflowInteractionError) -> ApiError {
    match e {
        WorkflowInteractionError::NotFound(_) => ApiError::not_found(
            "workflow_not_found",
            format!("workflow {id:?} does not exist"),
        ),
        WorkflowInteractionError::Rpc(s)
            if s.code() == temporalio_client::tonic::Code::InvalidArgument =>
        {
            ApiError::bad_request("invalid_run_id", s.message().to_string())
        }
        other => ApiError::temporal_unavailable(other.to_string()),
    }
}

/// The workflow's status, and its result, error or progress.
pub async fn show(
    State(state): State<Arc<ApiState>>,
    Path(workflow_id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Result<Json<Value>, ApiError> {
    check_id("workflow_id", &workflow_id)?;
    if let Some(run_id) = &query.run_id {
        check_id("run_id", run_id)?;
    }
    let handle: WorkflowHandle<Client, UserWorkflow> = WorkflowHandle::new(
        state.client.clone(),
        WorkflowExecutionInfo::builder()
            .namespace(state.namespace.clone())
            .workflow_id(workflow_id.clone())
            .maybe_run_id(query.run_id.clone())
            .build(),
    );
    let description = handle
        .describe(WorkflowDescribeOptions::default())
        .await
        .map_err(|e| interaction_error(&workflow_id, e))?;
    let status = description.status();
    let info = description
        .raw_description
        .workflow_execution_info
        .clone()
        .unwrap_or_default();
    let run_id = info
        .execution
        .as_ref()
        .map(|e| e.run_id.clone())
        .unwrap_or_default();
    let mut body = json!({
        "workflow_id": workflow_id,
        "run_id": run_id,
        "status": status_name(status),
        "start_time_ms": millis(description.start_time()),
        "close_time_ms": millis(description.close_time()),
    });
    // Read the outcome of exactly this run.
    let run: WorkflowHandle<Client, UserWorkflow> = WorkflowHandle::new(
        state.client.clone(),
        WorkflowExecutionInfo::builder()
            .namespace(state.namespace.clone())
            .workflow_id(workflow_id.clone())
            .run_id(run_id)
            .build(),
    );
    match status {
        WorkflowExecutionStatus::Running => {
            if let Ok(progress) = run
                .query(UserWorkflow::progress, (), WorkflowQueryOptions::default())
                .await
            {
                body["progress"] = serde_json::to_value(progress).unwrap_or(Value::Null);
            }
        }
        WorkflowExecutionStatus::Completed
        | WorkflowExecutionStatus::Failed
        | WorkflowExecutionStatus::Canceled
        | WorkflowExecutionStatus::Terminated
        | WorkflowExecutionStatus::TimedOut => {
            let options = WorkflowGetResultOptions::builder()
                .follow_runs(false)
                .build();
            match run.get_result(options).await {
                Ok(outcome) => {
                    body["result"] = serde_json::to_value(outcome).unwrap_or(Value::Null)
                }
                Err(WorkflowGetResultError::Failed(f)) => body["error"] = failure_json(f.failure()),
                Err(other) => body["error"] = json!({"message": other.to_string()}),
            }
        }
        _ => {}
    }
    Ok(Json(body))
}

/// A Temporal failure as `{"message","type","non_retryable","details","cause"}`, the cause
/// chain nested.
fn failure_json(failure: &Failure) -> Value {
    let mut out = json!({"message": failure.message});
    match &failure.failure_info {
        Some(FailureInfo::ApplicationFailureInfo(a)) => {
            out["type"] = json!(a.r#type);
            out["non_retryable"] = json!(a.non_retryable);
            if let Some(p) = a.details.as_ref().and_then(|d| d.payloads.first()) {
                out["details"] = activity_worker::payload::to_json(0, p).unwrap_or(Value::Null);
            }
        }
        Some(FailureInfo::TimeoutFailureInfo(t)) => {
            out["type"] = json!("Timeout");
            out["timeout_type"] = json!(t.timeout_type);
        }
        Some(FailureInfo::ActivityFailureInfo(a)) => {
            out["type"] = json!("ActivityFailure");
            out["activity_type"] = json!(a.activity_type.as_ref().map(|t| t.name.clone()));
        }
        Some(FailureInfo::CanceledFailureInfo(_)) => out["type"] = json!("Canceled"),
        Some(FailureInfo::TerminatedFailureInfo(_)) => out["type"] = json!("Terminated"),
        _ => {}
    }
    if let Some(cause) = &failure.cause {
        out["cause"] = failure_json(cause);
    }
    out
}
