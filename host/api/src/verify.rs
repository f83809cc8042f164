//! `POST /api/v1/activities/{name}/verify`: runs a candidate component on the inputs of the
//! last completed executions of an activity type, as Temporal recorded them, and compares
//! its results with the recorded ones.
//!
//! The corpus is Temporal's own history: completed `ActivityTaskScheduled` /
//! `ActivityTaskCompleted` pairs of closed workflow runs (found through visibility) and
//! completed standalone activity executions of the type. Each case runs in the sandbox with
//! the candidate's grants and limits, except that key-value writes go to a scratch layer
//! (reads see the real store) and outgoing HTTP is refused. Local activities record no input
//! in history, so they are not part of the corpus.

use std::sync::Arc;

use activity_runtime::{ActivityInfo, ActivitySpec, CallContext, ScratchKeyValue};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use temporalio_client::grpc::WorkflowService;
use temporalio_client::tonic::IntoRequest;
use temporalio_common::protos::temporal::api::activity::v1::activity_execution_outcome;
use temporalio_common::protos::temporal::api::common::v1::{Payloads, WorkflowExecution};
use temporalio_common::protos::temporal::api::enums::v1::EventType;
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    DescribeActivityExecutionRequest, GetWorkflowExecutionHistoryRequest,
    ListActivityExecutionsRequest, ListWorkflowExecutionsRequest,
};

use crate::activities::{deploy_request, registry_error};
use crate::workflows::rpc_error;
use crate::{ApiError, ApiState, ErrorBody};

/// Cases verified when `last` is not given.
const DEFAULT_LAST: usize = 20;
/// The most cases one verify runs.
const MAX_LAST: usize = 500;
/// Closed workflow runs read at most, looking for cases.
const MAX_RUNS_READ: usize = 1000;
/// The only host a verified candidate may "reach": no name resolves under `.invalid`.
const NO_HOST: &str = "verify.invalid";

/// How one recorded call went on the candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CaseStatus {
    /// The candidate answered what was recorded.
    Same,
    /// It answered something else.
    Different,
    /// It failed (trap, limit, error value, refused HTTP, arguments it does not take).
    Failed,
}

/// One recorded call and the candidate's answer.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct VerifyCase {
    /// Same, different or failed.
    pub status: CaseStatus,
    /// The recorded arguments.
    pub input: Vec<Value>,
    /// The recorded result.
    pub expected: Value,
    /// The candidate's result (`null` when it failed).
    pub got: Value,
    /// From `expected` to `got` as a JSON Patch (RFC 6902); empty when the same.
    pub diff: Vec<Value>,
    /// The candidate's failure, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Where it was recorded: the workflow (or the standalone activity's id) and run.
    pub source: String,
}

/// What `verify` found.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct VerifyReport {
    /// The activity type.
    pub activity: String,
    /// The candidate's digest.
    pub candidate: String,
    /// Cases the candidate answered the same.
    pub same: usize,
    /// Cases it answered differently.
    pub different: usize,
    /// Cases it failed.
    pub failed: usize,
    /// Every case, newest first.
    pub cases: Vec<VerifyCase>,
}

/// One recorded call: where, its arguments and its result payloads.
struct Recorded {
    source: String,
    input: Option<Payloads>,
    result: Option<Payloads>,
}

/// `POST /api/v1/activities/{name}/verify?last=N`: runs the candidate (the body, a
/// component) on the last N completed executions of `name` and compares. Grants, limits and
/// the export are read from the query as a deploy reads them.
#[utoipa::path(post, operation_id = "verify_activity", path = "/api/v1/activities/{name}/verify", tag = "activities",
    params(("name" = String, Path, description = "Activity type name"),
        ("last" = Option<u64>, Query, description = "How many recorded executions to replay, 1..500 (default 20)"),
        crate::activities::DeployParams),
    request_body(description = "The candidate component's bytes", content((Vec<u8> = "application/wasm"), (Vec<u8> = "application/octet-stream"))),
    responses(
        (status = 200, description = "The cases and their counts", body = VerifyReport),
        (status = 400, description = "Invalid name, parameter or empty body", body = ErrorBody),
        (status = 404, description = "Not deployed", body = ErrorBody),
        (status = 413, description = "Over registry.max_component_bytes", body = ErrorBody),
        (status = 422, description = "Not a component, or its parameters differ from the active version's", body = ErrorBody),
        (status = 503, description = "Temporal unavailable", body = ErrorBody)))]
pub async fn verify(
    State(state): State<Arc<ApiState>>,
    crate::json::ApiPath(name): crate::json::ApiPath<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Json<VerifyReport>, ApiError> {
    let active = crate::activities::deployed_signature(&state, &name)?;
    let (last, rest) = split_last(query.as_deref())?;
    let request = deploy_request(rest.as_deref(), &state, "verify")?;
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "empty_body",
            "send the candidate component's bytes with Content-Type: application/wasm",
        ));
    }
    let mut grants = request.grants;
    if !grants.allowed_hosts.is_empty() {
        // Outgoing HTTP is refused: the only host granted is one that never resolves.
        grants.allowed_hosts = vec![NO_HOST.into()];
    }
    let spec = ActivitySpec {
        activity_type: name.clone(),
        export: request.export,
        grants,
        limits: request.limits,
    };
    let runtime = state.registry.runtime().clone();
    let candidate = runtime
        .load(spec, &body)
        .await
        .map_err(|e| registry_error(activity_registry::RegistryError::Refused(e)))?;
    if candidate.signature().params != active.params {
        return Err(ApiError {
            status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            code: "signature_mismatch",
            message: format!(
                "the candidate's parameters ({}) differ from the active version's ({}): the recorded inputs do not fit",
                candidate.signature().params.len(),
                active.params.len()
            ),
        });
    }
    let recorded = recorded_calls(&state, &name, last).await?;
    let mut report = VerifyReport {
        activity: name.clone(),
        candidate: candidate.digest().as_str().to_string(),
        same: 0,
        different: 0,
        failed: 0,
        cases: Vec::new(),
    };
    for call in recorded {
        let case = run_case(&runtime, &candidate, &state.store, &name, call).await;
        match case.status {
            CaseStatus::Same => report.same += 1,
            CaseStatus::Different => report.different += 1,
            CaseStatus::Failed => report.failed += 1,
        }
        report.cases.push(case);
    }
    tracing::info!(
        activity = name.as_str(),
        candidate = report.candidate.as_str(),
        same = report.same,
        different = report.different,
        failed = report.failed,
        "candidate verified against recorded executions"
    );
    Ok(Json(report))
}

/// `last` out of the query; the rest is a deploy's query.
fn split_last(query: Option<&str>) -> Result<(usize, Option<String>), ApiError> {
    let mut last = DEFAULT_LAST;
    let mut rest = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if key == "last" {
            last = value
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LAST).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_parameter",
                        format!("last must be an integer from 1 to {MAX_LAST}, found {value:?}"),
                    )
                })?;
        } else {
            rest.append_pair(&key, &value);
        }
    }
    let rest = rest.finish();
    Ok((last, (!rest.is_empty()).then_some(rest)))
}

/// Runs one recorded call on the candidate with a scratch key-value layer.
async fn run_case(
    runtime: &activity_runtime::Runtime,
    candidate: &activity_runtime::ActivityComponent,
    store: &Arc<dyn activity_runtime::KeyValueBackend>,
    name: &str,
    call: Recorded,
) -> VerifyCase {
    let input = call
        .input
        .as_ref()
        .map(|p| activity_worker::payload::args_to_json(&p.payloads))
        .transpose();
    let expected = call
        .result
        .as_ref()
        .and_then(|p| p.payloads.first())
        .map(|p| activity_worker::payload::to_json(0, p))
        .transpose();
    let (input, expected) = match (input, expected) {
        (Ok(i), Ok(e)) => (i.unwrap_or_default(), e.unwrap_or(Value::Null)),
        (Err(e), _) | (_, Err(e)) => {
            return VerifyCase {
                status: CaseStatus::Failed,
                input: Vec::new(),
                expected: Value::Null,
                got: Value::Null,
                diff: Vec::new(),
                failure: Some(format!("the recorded payloads are not JSON: {e}")),
                source: call.source,
            }
        }
    };
    let scratch = Arc::new(ScratchKeyValue::over(Some(store.clone())));
    let context = CallContext {
        info: ActivityInfo {
            activity_id: format!("verify-{}", call.source),
            activity_type: name.to_string(),
            namespace: "verify".into(),
            task_queue: "verify".into(),
            attempt: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    let outcome = runtime
        .invoke_isolated(candidate, &input, context, scratch)
        .await;
    match outcome {
        Ok(got) => {
            let patch = json_patch::diff(&expected, &got.output);
            let diff: Vec<Value> = patch
                .0
                .iter()
                .filter_map(|op| serde_json::to_value(op).ok())
                .collect();
            VerifyCase {
                status: if diff.is_empty() {
                    CaseStatus::Same
                } else {
                    CaseStatus::Different
                },
                input,
                expected,
                got: got.output,
                diff,
                failure: None,
                source: call.source,
            }
        }
        Err(f) => VerifyCase {
            status: CaseStatus::Failed,
            input,
            expected,
            got: Value::Null,
            diff: Vec::new(),
            failure: Some(format!("{}: {}", f.kind, f.message)),
            source: call.source,
        },
    }
}

/// Up to `last` completed calls of `name`, newest first: standalone executions, then
/// calls inside closed workflow runs.
async fn recorded_calls(
    state: &ApiState,
    name: &str,
    last: usize,
) -> Result<Vec<Recorded>, ApiError> {
    let mut found = standalone_calls(state, name, last).await?;
    let namespace = state.temporal.namespace.clone();
    let mut token = Vec::new();
    let mut read = 0;
    while found.len() < last && read < MAX_RUNS_READ {
        let page = WorkflowService::list_workflow_executions(
            &mut state.client()?,
            ListWorkflowExecutionsRequest {
                namespace: namespace.clone(),
                page_size: 100,
                next_page_token: token,
                query: "ExecutionStatus != 'Running'".into(),
            }
            .into_request(),
        )
        .await
        .map_err(|e| rpc_error("could not list workflow runs", e))?
        .into_inner();
        for info in &page.executions {
            read += 1;
            if let Some(execution) = &info.execution {
                let mut calls = calls_in_run(state, execution, name).await?;
                calls.reverse();
                found.extend(calls);
            }
            if found.len() >= last {
                break;
            }
        }
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    found.truncate(last);
    Ok(found)
}

/// Completed standalone executions of `name`, with their input and result.
async fn standalone_calls(
    state: &ApiState,
    name: &str,
    last: usize,
) -> Result<Vec<Recorded>, ApiError> {
    let namespace = state.temporal.namespace.clone();
    let listed = WorkflowService::list_activity_executions(
        &mut state.client()?,
        ListActivityExecutionsRequest {
            namespace: namespace.clone(),
            page_size: last.min(1000) as i32,
            next_page_token: Vec::new(),
            query: format!("ActivityType = '{name}' AND ExecutionStatus = 'Completed'"),
        }
        .into_request(),
    )
    .await;
    // A server without standalone activities (or without their visibility) has none.
    let listed = match listed {
        Ok(l) => l.into_inner(),
        Err(e) => {
            tracing::debug!(error = %e, "standalone activity executions are not listed");
            return Ok(Vec::new());
        }
    };
    let mut found = Vec::new();
    for execution in listed.executions {
        let described = WorkflowService::describe_activity_execution(
            &mut state.client()?,
            DescribeActivityExecutionRequest {
                namespace: namespace.clone(),
                activity_id: execution.activity_id.clone(),
                run_id: execution.run_id.clone(),
                include_input: true,
                include_outcome: true,
                ..Default::default()
            }
            .into_request(),
        )
        .await
        .map_err(|e| rpc_error("could not describe an activity execution", e))?
        .into_inner();
        if let Some(activity_execution_outcome::Value::Result(result)) =
            described.outcome.and_then(|o| o.value)
        {
            found.push(Recorded {
                source: format!("activity {}", execution.activity_id),
                input: described.input,
                result: Some(result),
            });
        }
    }
    Ok(found)
}

/// The completed calls of `name` in one run's history, oldest first.
async fn calls_in_run(
    state: &ApiState,
    execution: &WorkflowExecution,
    name: &str,
) -> Result<Vec<Recorded>, ApiError> {
    let mut scheduled = std::collections::HashMap::new();
    let mut calls = Vec::new();
    let mut token = Vec::new();
    loop {
        let page = WorkflowService::get_workflow_execution_history(
            &mut state.client()?,
            GetWorkflowExecutionHistoryRequest {
                namespace: state.temporal.namespace.clone(),
                execution: Some(execution.clone()),
                next_page_token: token,
                ..Default::default()
            }
            .into_request(),
        )
        .await
        .map_err(|e| rpc_error("could not read a workflow's history", e))?
        .into_inner();
        for event in page.history.map(|h| h.events).unwrap_or_default() {
            match (event.event_type(), event.attributes) {
                (
                    EventType::ActivityTaskScheduled,
                    Some(Attributes::ActivityTaskScheduledEventAttributes(a)),
                ) if a.activity_type.as_ref().is_some_and(|t| t.name == name) => {
                    scheduled.insert(event.event_id, a.input);
                }
                (
                    EventType::ActivityTaskCompleted,
                    Some(Attributes::ActivityTaskCompletedEventAttributes(a)),
                ) => {
                    if let Some(input) = scheduled.remove(&a.scheduled_event_id) {
                        calls.push(Recorded {
                            source: format!(
                                "workflow {} run {}",
                                execution.workflow_id, execution.run_id
                            ),
                            input,
                            result: a.result,
                        });
                    }
                }
                _ => {}
            }
        }
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    Ok(calls)
}
