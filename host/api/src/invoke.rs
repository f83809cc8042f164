//! Serverless invoke: `POST /api/v1/activities/{name}/invoke` runs a deployed activity once
//! as a Temporal standalone activity (no workflow) on the host's task queue, and
//! `GET /api/v1/activities/{name}/executions/{activity_id}` reads one.
//!
//! Temporal gives each execution durability, retries and a history in the Web UI; the same
//! execution can be started by any client, e.g.
//! `temporal activity execute --type ValidateUser --task-queue user-task-queue --input '{...}'`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use temporalio_client::grpc::WorkflowService;
use temporalio_client::tonic::IntoRequest;
use temporalio_common::protos::temporal::api::activity::v1::{
    activity_execution_outcome, ActivityExecutionOutcome,
};
use temporalio_common::protos::temporal::api::common::v1::{
    ActivityType, Header, Payload, Payloads, RetryPolicy,
};
use temporalio_common::protos::temporal::api::enums::v1::{
    ActivityExecutionStatus, ActivityIdConflictPolicy, ActivityIdReusePolicy, TaskQueueKind,
};
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    DescribeActivityExecutionRequest, PollActivityExecutionRequest, StartActivityExecutionRequest,
};

use crate::json::{ApiJson, ApiPath, ApiQuery};
use crate::users::{check_id, check_run_id};
use crate::views::ExecutionView;
use crate::workflows::{failure_view, rpc_error};
use crate::{ApiError, ApiState, ErrorBody};

/// The body of an invoke: the arguments as an array, or an object with the arguments and
/// options.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum InvokeBody {
    /// Just the arguments, one JSON value per parameter.
    Args(Vec<Value>),
    /// Arguments and options.
    WithOptions(InvokeOptions),
}

/// Arguments and options of an invoke.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvokeOptions {
    /// One JSON value per parameter.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub args: Vec<Value>,
    /// The activity id; a second invoke with the id of a running execution answers that
    /// execution instead of starting another. Default: `invoke-{name}-{uuid}`.
    pub activity_id: Option<String>,
    /// Timeout of each attempt, in milliseconds.
    pub start_to_close_ms: Option<u64>,
    /// Timeout of the whole execution, in milliseconds.
    pub schedule_to_close_ms: Option<u64>,
    /// Heartbeat timeout of each attempt, in milliseconds, 0 for none.
    pub heartbeat_timeout_ms: Option<u64>,
    /// Attempts, 0 for unlimited.
    pub maximum_attempts: Option<u32>,
}

/// Query string of an invoke.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InvokeQuery {
    /// `false`: answer `202` with the id at once instead of waiting for the result.
    wait: Option<bool>,
}

fn positive(field: &str, value: Option<u64>, default: u64) -> Result<u64, ApiError> {
    match value {
        Some(0) => Err(ApiError::bad_request(
            "invalid_field",
            format!("{field} must be a positive number of milliseconds"),
        )),
        Some(ms) => Ok(ms),
        None => Ok(default),
    }
}

/// `POST /api/v1/activities/{name}/invoke[?wait=false]`.
#[utoipa::path(post, operation_id = "invoke_activity", path = "/api/v1/activities/{name}/invoke", tag = "invoke",
    params(("name" = String, Path, description = "A deployed activity type"), InvokeQuery),
    request_body(content = InvokeBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The execution closed: `status` COMPLETED with `result` and `version`, or FAILED with `error`", body = ExecutionView),
        (status = 202, description = "Still running (or `wait=false`): poll `location`", body = ExecutionView),
        (status = 400, description = "Invalid name, arguments or options", body = ErrorBody),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorBody),
        (status = 404, description = "Not deployed on this host", body = ErrorBody),
        (status = 501, description = "The Temporal server does not run standalone activities (`standalone_activities_unavailable`: its version and the minimum, or the switch that is off)", body = ErrorBody),
        (status = 503, description = "Temporal unavailable", body = ErrorBody)))]
pub async fn invoke(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<crate::auth::Caller>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<InvokeQuery>,
    ApiJson(body): ApiJson<InvokeBody>,
) -> Result<Response, ApiError> {
    // Checked against the stored WIT signature: no component is compiled or run here.
    let signature = crate::activities::deployed_signature(&state, &name)?;
    let options = match body {
        InvokeBody::Args(args) => InvokeOptions {
            args,
            ..Default::default()
        },
        InvokeBody::WithOptions(o) => o,
    };
    wit_json::args_to_vals(&options.args, &signature.params)
        .map_err(|e| ApiError::bad_request("invalid_arguments", format!("{name}: {e}")))?;
    if let Some(id) = &options.activity_id {
        check_id("activity_id", id)?;
    }
    let d = &state.settings.invoke;
    let start_to_close = positive(
        "start_to_close_ms",
        options.start_to_close_ms,
        d.start_to_close_ms,
    )?;
    let schedule_to_close = positive(
        "schedule_to_close_ms",
        options.schedule_to_close_ms,
        d.schedule_to_close_ms,
    )?;
    let attempts = options.maximum_attempts.unwrap_or(d.maximum_attempts);
    let attempts = i32::try_from(attempts)
        .map_err(|_| ApiError::bad_request("invalid_field", "maximum_attempts is too large"))?;
    let client_id = options.activity_id.is_some();
    let activity_id = options
        .activity_id
        .unwrap_or_else(|| format!("invoke-{name}-{}", uuid::Uuid::new_v4()));
    let request = StartActivityExecutionRequest {
        namespace: state.temporal.namespace.clone(),
        identity: crate::workflows::IDENTITY.into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        activity_id: activity_id.clone(),
        activity_type: Some(ActivityType { name: name.clone() }),
        task_queue: Some(TaskQueue {
            name: state.temporal.task_queue.clone(),
            kind: TaskQueueKind::Normal as i32,
            normal_name: String::new(),
        }),
        schedule_to_close_timeout: Duration::from_millis(schedule_to_close).try_into().ok(),
        start_to_close_timeout: Duration::from_millis(start_to_close).try_into().ok(),
        heartbeat_timeout: Some(
            options
                .heartbeat_timeout_ms
                .unwrap_or(d.heartbeat_timeout_ms),
        )
        .filter(|ms| *ms > 0)
        .and_then(|ms| Duration::from_millis(ms).try_into().ok()),
        retry_policy: Some(RetryPolicy {
            maximum_attempts: attempts,
            ..Default::default()
        }),
        input: Some(Payloads {
            payloads: options
                .args
                .iter()
                .map(activity_worker::payload::from_json)
                .collect(),
        }),
        // Whom its calls are billed to (`GET /api/v1/usage`, the key's CPU quota).
        header: Some(Header {
            fields: [(
                activity_worker::billing::CALLER_HEADER.to_string(),
                activity_worker::payload::from_json(&Value::String(caller.who.clone())),
            )]
            .into(),
        }),
        id_reuse_policy: ActivityIdReusePolicy::AllowDuplicate as i32,
        id_conflict_policy: if client_id {
            ActivityIdConflictPolicy::UseExisting as i32
        } else {
            ActivityIdConflictPolicy::Fail as i32
        },
        ..Default::default()
    };
    if let Some(why) = state
        .client
        .server()
        .and_then(|s| s.standalone_activities_missing())
    {
        return Err(ApiError::not_supported_by_server(
            "standalone_activities_unavailable",
            why,
        ));
    }
    let started =
        WorkflowService::start_activity_execution(&mut state.client()?, request.into_request())
            .await
            .map_err(|e| rpc_error(&format!("could not start activity {activity_id}"), e))?
            .into_inner();
    tracing::info!(
        activity = name.as_str(),
        activity_id = activity_id.as_str(),
        run_id = started.run_id.as_str(),
        started = started.started,
        "standalone activity started"
    );
    let pending = |run_id: String| running_answer(&name, &activity_id, &run_id);
    if query.wait == Some(false) {
        return Ok(pending(started.run_id));
    }
    let poll = PollActivityExecutionRequest {
        namespace: state.temporal.namespace.clone(),
        activity_id: activity_id.clone(),
        run_id: started.run_id.clone(),
    };
    let waited = tokio::time::timeout(Duration::from_millis(d.wait_ms), async {
        loop {
            let answer = WorkflowService::poll_activity_execution(
                &mut state.client()?,
                poll.clone().into_request(),
            )
            .await
            .map_err(|e| rpc_error(&format!("could not read activity {activity_id}"), e))?
            .into_inner();
            if let Some(outcome) = answer.outcome.filter(|o| o.value.is_some()) {
                return Ok::<_, ApiError>(outcome);
            }
        }
    })
    .await;
    match waited {
        Ok(outcome) => {
            let mut view = execution_view(activity_id, started.run_id, "RUNNING");
            write_outcome(&mut view, &outcome?);
            Ok(Json(view).into_response())
        }
        Err(_) => Ok(pending(started.run_id)),
    }
}

/// `202` with where to read the execution later.
fn running_answer(name: &str, activity_id: &str, run_id: &str) -> Response {
    let location = format!("/api/v1/activities/{name}/executions/{activity_id}");
    let view = ExecutionView {
        location: Some(location.clone()),
        ..execution_view(activity_id.into(), run_id.into(), "RUNNING")
    };
    let mut res = (StatusCode::ACCEPTED, Json(view)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// An execution with only its ids and status.
fn execution_view(activity_id: String, run_id: String, status: &str) -> ExecutionView {
    ExecutionView {
        activity_id,
        run_id,
        status: status.into(),
        attempt: None,
        result: None,
        version: None,
        usage: None,
        error: None,
        last_failure: None,
        location: None,
    }
}

/// Writes `status` and `result` (with `version`, the digest of the code that ran) or
/// `error` into `view`.
fn write_outcome(view: &mut ExecutionView, outcome: &ActivityExecutionOutcome) {
    match &outcome.value {
        Some(activity_execution_outcome::Value::Result(payloads)) => {
            view.status = "COMPLETED".into();
            let first: Option<&Payload> = payloads.payloads.first();
            view.result = Some(
                first
                    .and_then(|p| activity_worker::payload::to_json(0, p).ok())
                    .unwrap_or(Value::Null),
            );
            view.version = first
                .and_then(|p| p.metadata.get(activity_worker::payload::VERSION_METADATA))
                .and_then(|v| std::str::from_utf8(v).ok())
                .map(str::to_string);
            view.usage = first
                .and_then(|p| p.metadata.get(activity_worker::payload::USAGE_METADATA))
                .and_then(|v| serde_json::from_slice(v).ok());
        }
        Some(activity_execution_outcome::Value::Failure(f)) => {
            view.status = "FAILED".into();
            view.error = Some(failure_view(f));
        }
        None => view.status = "RUNNING".into(),
    }
}

/// `GET /api/v1/activities/{name}/executions/{activity_id}[?run_id=]`: the status of an
/// invoked activity, and its result or error once closed.
#[utoipa::path(get, operation_id = "show_execution", path = "/api/v1/activities/{name}/executions/{activity_id}", tag = "invoke",
    params(("name" = String, Path, description = "Activity type"), ("activity_id" = String, Path, description = "The execution's id"), ("run_id" = Option<String>, Query, description = "A specific run")),
    responses(
        (status = 200, description = "Status, attempt, and the result or error once closed", body = ExecutionView),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "No such execution", body = ErrorBody),
        (status = 503, description = "Temporal unavailable", body = ErrorBody)))]
pub async fn execution(
    State(state): State<Arc<ApiState>>,
    ApiPath((name, activity_id)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<crate::workflows::ShowQuery>,
) -> Result<Json<ExecutionView>, ApiError> {
    activity_registry::check_name(&name)
        .map_err(|e| ApiError::bad_request("invalid_name", e.to_string()))?;
    check_id("activity_id", &activity_id)?;
    let run_id = query.run_id().unwrap_or_default().to_string();
    if !run_id.is_empty() {
        check_run_id(&run_id)?;
    }
    let request = DescribeActivityExecutionRequest {
        namespace: state.temporal.namespace.clone(),
        activity_id: activity_id.clone(),
        run_id,
        include_outcome: true,
        include_last_failure: true,
        ..Default::default()
    };
    let answer =
        WorkflowService::describe_activity_execution(&mut state.client()?, request.into_request())
            .await
            .map_err(
                |e| match rpc_error(&format!("activity execution {activity_id:?}"), e) {
                    e if e.status == StatusCode::NOT_FOUND => ApiError::not_found(
                        "execution_not_found",
                        format!("no execution {activity_id:?} of {name}"),
                    ),
                    e => e,
                },
            )?
            .into_inner();
    let info = answer.info.unwrap_or_default();
    if info.activity_type.as_ref().map(|t| t.name.as_str()) != Some(name.as_str()) {
        return Err(ApiError::not_found(
            "execution_not_found",
            format!("no execution {activity_id:?} of {name}"),
        ));
    }
    let status = info
        .status()
        .as_str_name()
        .trim_start_matches("ACTIVITY_EXECUTION_STATUS_")
        .to_string();
    let mut view = ExecutionView {
        attempt: Some(info.attempt),
        ..execution_view(activity_id, answer.run_id.clone(), &status)
    };
    if let Some(outcome) = &answer.outcome {
        write_outcome(&mut view, outcome);
    } else if info.status() == ActivityExecutionStatus::Running {
        view.last_failure = info.last_failure.as_ref().map(failure_view);
    }
    Ok(Json(view))
}
