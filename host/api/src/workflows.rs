//! `GET /api/v1/workflows/user`, `GET /api/v1/workflows/user/{workflow_id}` and its cancel;
//! the start is in `start`.

use std::sync::Arc;
use std::time::SystemTime;

use activity_worker::UserWorkflow;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use temporalio_client::errors::{WorkflowGetResultError, WorkflowInteractionError};
use temporalio_client::grpc::WorkflowService;
use temporalio_client::tonic::IntoRequest;
use temporalio_client::{
    Client, WorkflowDescribeOptions, WorkflowExecutionInfo, WorkflowExecutionStatus,
    WorkflowGetResultOptions, WorkflowHandle, WorkflowQueryOptions, WorkflowSignalOptions,
};
use temporalio_common::protos::temporal::api::failure::v1::{failure::FailureInfo, Failure};
use temporalio_common::protos::temporal::api::workflowservice::v1::ListWorkflowExecutionsRequest;

use crate::json::{ApiPath, ApiQuery};
use crate::users::{check_id, check_run_id};
use crate::views::{CancelSent, FailureView, WorkflowPage, WorkflowSummary, WorkflowView};
use crate::{ApiError, ApiState, ErrorBody};

/// The workflow type the routes start.
pub const WORKFLOW_TYPE: &str = "UserWorkflow";
/// Identity the API gives Temporal.
pub(crate) const IDENTITY: &str = "activity-host-api";
/// How long `show` waits for the `progress` query of a running workflow.
const PROGRESS_QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// Most runs one page of `GET /api/v1/workflows/user` lists.
pub const MAX_PAGE_SIZE: i32 = 100;

/// A failed Temporal call: what a client can fix is a 4xx, anything else a 503.
pub(crate) fn rpc_error(context: &str, status: temporalio_client::tonic::Status) -> ApiError {
    use temporalio_client::tonic::Code;
    match status.code() {
        Code::InvalidArgument => ApiError::bad_request(
            "invalid_argument",
            format!("{context}: {}", status.message()),
        ),
        Code::NotFound => {
            ApiError::not_found("not_found", format!("{context}: {}", status.message()))
        }
        _ => ApiError::temporal_unavailable(format!("{context}: {}", status.message())),
    }
}

/// Query string of `GET /api/v1/workflows/user/{workflow_id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShowQuery {
    run_id: Option<String>,
}

impl ShowQuery {
    /// The run asked for, if any.
    pub fn run_id(&self) -> Option<&str> {
        self.run_id.as_deref()
    }
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
#[utoipa::path(get, operation_id = "show_user_workflow", path = "/api/v1/workflows/user/{workflow_id}", tag = "workflows",
    params(("workflow_id" = String, Path, description = "The workflow id"), ("run_id" = Option<String>, Query, description = "A specific run")),
    responses(
        (status = 200, description = "`status`, timestamps, and `result`, `error` or `progress`", body = WorkflowView),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "No such workflow", body = ErrorBody),
        (status = 503, description = "Temporal unavailable", body = ErrorBody)))]
pub async fn show(
    State(state): State<Arc<ApiState>>,
    ApiPath(workflow_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ShowQuery>,
) -> Result<Json<WorkflowView>, ApiError> {
    check_id("workflow_id", &workflow_id)?;
    if let Some(run_id) = &query.run_id {
        check_run_id(run_id)?;
    }
    let description = handle(&state, &workflow_id, query.run_id.clone())?
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
    let mut body = WorkflowView {
        workflow_id: workflow_id.clone(),
        run_id: run_id.clone(),
        status: status_name(status).into(),
        start_time_ms: millis(description.start_time()),
        close_time_ms: millis(description.close_time()),
        progress: None,
        result: None,
        error: None,
    };
    // Read the outcome of exactly this run.
    let run = handle(&state, &workflow_id, Some(run_id))?;
    match status {
        WorkflowExecutionStatus::Running => {
            // Best effort: a query needs a worker, and none may be polling right now.
            let query = run.query(UserWorkflow::progress, (), WorkflowQueryOptions::default());
            if let Ok(Ok(progress)) = tokio::time::timeout(PROGRESS_QUERY_TIMEOUT, query).await {
                body.progress = Some(progress);
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
                Ok(outcome) => body.result = Some(outcome),
                Err(WorkflowGetResultError::Failed(f)) => {
                    body.error = Some(failure_view(f.failure()))
                }
                Err(other) => {
                    body.error = Some(FailureView {
                        message: other.to_string(),
                        ..FailureView::default()
                    })
                }
            }
        }
        _ => {}
    }
    Ok(Json(body))
}

/// A Temporal failure as `{"message","type","non_retryable","details","cause"}`, the cause
/// chain nested.
pub(crate) fn failure_view(failure: &Failure) -> FailureView {
    let mut out = FailureView {
        message: failure.message.clone(),
        ..FailureView::default()
    };
    let kind = |k: &str| Some(k.to_string());
    match &failure.failure_info {
        Some(FailureInfo::ApplicationFailureInfo(a)) => {
            out.kind = Some(a.r#type.clone());
            out.non_retryable = Some(a.non_retryable);
            if let Some(p) = a.details.as_ref().and_then(|d| d.payloads.first()) {
                out.details = Some(activity_worker::payload::to_json(0, p).unwrap_or(Value::Null));
            }
        }
        Some(FailureInfo::TimeoutFailureInfo(t)) => {
            out.kind = kind("Timeout");
            out.timeout_type = Some(t.timeout_type);
        }
        Some(FailureInfo::ActivityFailureInfo(a)) => {
            out.kind = kind("ActivityFailure");
            out.activity_type = a.activity_type.as_ref().map(|t| t.name.clone());
        }
        Some(FailureInfo::CanceledFailureInfo(_)) => out.kind = kind("Canceled"),
        Some(FailureInfo::TerminatedFailureInfo(_)) => out.kind = kind("Terminated"),
        _ => {}
    }
    out.cause = failure.cause.as_ref().map(|c| Box::new(failure_view(c)));
    out
}

fn handle(
    state: &ApiState,
    workflow_id: &str,
    run_id: Option<String>,
) -> Result<WorkflowHandle<Client, UserWorkflow>, ApiError> {
    let client = state.client()?;
    Ok(WorkflowHandle::new(
        client,
        WorkflowExecutionInfo::builder()
            .namespace(state.temporal.namespace.clone())
            .workflow_id(workflow_id.to_string())
            .maybe_run_id(run_id)
            .build(),
    ))
}

/// `POST /api/v1/workflows/user/{workflow_id}/cancel`: sends the `cancel` signal; the
/// workflow stops before its next step. `202`; `409` when the run is not running.
#[utoipa::path(post, operation_id = "cancel_user_workflow", path = "/api/v1/workflows/user/{workflow_id}/cancel", tag = "workflows",
    params(("workflow_id" = String, Path, description = "The workflow id"), ("run_id" = Option<String>, Query, description = "A specific run")),
    responses(
        (status = 202, description = "The cancel signal was sent", body = CancelSent),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "No such workflow", body = ErrorBody),
        (status = 409, description = "The run is not running", body = ErrorBody),
        (status = 503, description = "Temporal unavailable", body = ErrorBody)))]
pub async fn cancel(
    State(state): State<Arc<ApiState>>,
    ApiPath(workflow_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ShowQuery>,
) -> Result<(StatusCode, Json<CancelSent>), ApiError> {
    check_id("workflow_id", &workflow_id)?;
    if let Some(run_id) = &query.run_id {
        check_run_id(run_id)?;
    }
    let h = handle(&state, &workflow_id, query.run_id.clone())?;
    let description = h
        .describe(WorkflowDescribeOptions::default())
        .await
        .map_err(|e| interaction_error(&workflow_id, e))?;
    let status = description.status();
    let run_id = description
        .raw_description
        .workflow_execution_info
        .as_ref()
        .and_then(|i| i.execution.as_ref())
        .map(|e| e.run_id.clone())
        .unwrap_or_default();
    if status != WorkflowExecutionStatus::Running {
        return Err(ApiError {
            status: StatusCode::CONFLICT,
            code: "workflow_not_running",
            message: format!(
                "workflow {workflow_id:?} is {}; only a running workflow can be cancelled",
                status_name(status)
            ),
        });
    }
    handle(&state, &workflow_id, Some(run_id.clone()))?
        .signal(UserWorkflow::cancel, (), WorkflowSignalOptions::default())
        .await
        .map_err(|e| interaction_error(&workflow_id, e))?;
    tracing::info!(
        workflow_id = workflow_id.as_str(),
        run_id = run_id.as_str(),
        "cancel signal sent"
    );
    Ok((
        StatusCode::ACCEPTED,
        Json(CancelSent {
            workflow_id,
            run_id,
            signal: "cancel".into(),
        }),
    ))
}

/// Query string of `GET /api/v1/workflows/user`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this user's runs.
    user_id: Option<String>,
    /// Only runs in this status: RUNNING, COMPLETED, FAILED, CANCELED, TERMINATED,
    /// CONTINUED_AS_NEW, TIMED_OUT (any case).
    status: Option<String>,
    /// Runs per page, 1 to 100 (default 20).
    page_size: Option<i32>,
    /// `next_page_token` of the previous page.
    page_token: Option<String>,
}

/// The visibility query name of a status written as Temporal names it.
fn status_filter(status: &str) -> Option<&'static str> {
    Some(
        match status.to_ascii_uppercase().replace('_', "").as_str() {
            "RUNNING" => "Running",
            "COMPLETED" => "Completed",
            "FAILED" => "Failed",
            "CANCELED" | "CANCELLED" => "Canceled",
            "TERMINATED" => "Terminated",
            "CONTINUEDASNEW" => "ContinuedAsNew",
            "TIMEDOUT" => "TimedOut",
            _ => return None,
        },
    )
}

/// `GET /api/v1/workflows/user?user_id=&status=&page_size=&page_token=`: recent runs of
/// `UserWorkflow` on this namespace, newest first, from Temporal's visibility store (which
/// trails the runs by up to a second).
#[utoipa::path(get, operation_id = "list_user_workflows", path = "/api/v1/workflows/user", tag = "workflows",
    params(ListQuery),
    responses(
        (status = 200, description = "`workflows` (newest first) and `next_page_token`", body = WorkflowPage),
        (status = 400, description = "Invalid filter, page size or token", body = ErrorBody),
        (status = 503, description = "Temporal unavailable", body = ErrorBody)))]
pub async fn list(
    State(state): State<Arc<ApiState>>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<WorkflowPage>, ApiError> {
    let mut filter = format!("WorkflowType = '{WORKFLOW_TYPE}'");
    if let Some(user_id) = &query.user_id {
        check_id("user_id", user_id)?;
        if user_id.contains(['\'', '"', '\\']) {
            return Err(ApiError::bad_request(
                "invalid_id",
                "user_id filter may not contain quotes or backslashes",
            ));
        }
        filter.push_str(&format!(" AND WorkflowId STARTS_WITH 'user-{user_id}-'"));
    }
    if let Some(status) = &query.status {
        let name = status_filter(status).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_status",
                format!("status {status:?} is not one of RUNNING, COMPLETED, FAILED, CANCELED, TERMINATED, CONTINUED_AS_NEW, TIMED_OUT"),
            )
        })?;
        filter.push_str(&format!(" AND ExecutionStatus = '{name}'"));
    }
    let page_size = query.page_size.unwrap_or(20);
    if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
        return Err(ApiError::bad_request(
            "invalid_page_size",
            format!("page_size must be 1 to {MAX_PAGE_SIZE}"),
        ));
    }
    let next_page_token = match &query.page_token {
        Some(t) => hex::decode(t).map_err(|_| {
            ApiError::bad_request(
                "invalid_page_token",
                "page_token is not a token this API gave",
            )
        })?,
        None => Vec::new(),
    };
    let request = ListWorkflowExecutionsRequest {
        namespace: state.temporal.namespace.clone(),
        page_size,
        next_page_token,
        query: filter,
    };
    let page =
        WorkflowService::list_workflow_executions(&mut state.client()?, request.into_request())
            .await
            .map_err(|e| rpc_error("could not list workflows", e))?
            .into_inner();
    let ts = |t: &Option<_>| {
        millis(
            t.as_ref()
                .and_then(temporalio_common::protos::proto_ts_to_system_time),
        )
    };
    let workflows = page
        .executions
        .iter()
        .map(|e| {
            let execution = e.execution.clone().unwrap_or_default();
            WorkflowSummary {
                workflow_id: execution.workflow_id,
                run_id: execution.run_id,
                status: e
                    .status()
                    .as_str_name()
                    .trim_start_matches("WORKFLOW_EXECUTION_STATUS_")
                    .to_string(),
                start_time_ms: ts(&e.start_time),
                close_time_ms: ts(&e.close_time),
            }
        })
        .collect();
    Ok(Json(WorkflowPage {
        workflows,
        next_page_token: (!page.next_page_token.is_empty())
            .then(|| hex::encode(&page.next_page_token)),
    }))
}
