//! `POST /api/v1/workflows/user`: a start request, its workflow id, and what a second
//! request with the same id gets. Each run keeps the fingerprint of the request that
//! started it in its memo; a request that finds a run under its id (open, or closed when it
//! carries an `Idempotency-Key`) gets that run only when it asks the same thing. A
//! different request is refused, never dropped in silence: `409` while another run for the
//! same user and action is open, `422` when an `Idempotency-Key` is reused for another
//! request.

use std::sync::Arc;

use activity_worker::workflow::{Action, ActivityMode, UserRequest};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use temporalio_client::grpc::WorkflowService;
use temporalio_client::tonic::{Code, IntoRequest};
use temporalio_common::protos::temporal::api::common::v1::{
    Memo, Payloads, WorkflowExecution, WorkflowType,
};
use temporalio_common::protos::temporal::api::enums::v1::{
    TaskQueueKind, WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
};
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    DescribeWorkflowExecutionRequest, StartWorkflowExecutionRequest,
};

use crate::json::ApiJson;
use crate::users::check_id;
use crate::views::Started;
use crate::workflows::{rpc_error, IDENTITY, WORKFLOW_TYPE};
use crate::{ApiError, ApiState, ErrorBody};

/// Header whose value makes a request's workflow id unique beyond `user_id` and `action`.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The body of `POST /api/v1/workflows/user`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartUserWorkflow {
    /// 1 to 255 printable ASCII bytes, no '/'.
    user_id: String,
    /// Required for create and update.
    #[serde(default)]
    email: String,
    /// Required for create and update.
    #[serde(default)]
    name: String,
    /// `create`, `update` or `delete`.
    #[schema(value_type = ActionName)]
    action: Action,
    /// `remote`: each activity is a Temporal activity on the task queue, run by any host;
    /// `local`: in-process on the host that runs the workflow (Temporal local activities, in
    /// the same sandbox). Default: `api.activity_mode`. Recorded in the run's input.
    #[serde(default)]
    #[schema(value_type = Option<ActivityModeName>)]
    activity_mode: Option<ActivityMode>,
}

/// Where `UserWorkflow` runs its activities.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ActivityModeName {
    /// Temporal activities on the task queue.
    Remote,
    /// Temporal local activities on the workflow's host.
    Local,
}

/// What `UserWorkflow` does.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ActionName {
    /// Validate, create, notify.
    Create,
    /// Validate, update, notify.
    Update,
    /// Delete, notify.
    Delete,
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
#[utoipa::path(post, operation_id = "start_user_workflow", path = "/api/v1/workflows/user", tag = "workflows",
    request_body(content = StartUserWorkflow, content_type = "application/json"),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the workflow id unique beyond user_id and action")),
    responses(
        (status = 201, description = "Started", body = Started),
        (status = 200, description = "A run this request started is open (or, with an Idempotency-Key, has closed): its ids", body = Started),
        (status = 409, description = "A run for another request on this user and action is open", body = ErrorBody),
        (status = 422, description = "The Idempotency-Key was used for another request", body = ErrorBody),
        (status = 400, description = "Missing, empty, unknown or mistyped field; malformed JSON", body = ErrorBody),
        (status = 413, description = "Body over api.max_json_body_bytes", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 503, description = "Temporal unavailable", body = ErrorBody)))]
pub async fn start(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<crate::auth::Caller>,
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
        activity_mode: body.activity_mode.unwrap_or(state.settings.activity_mode),
    };
    let input = serde_json::to_value(&request).map_err(|e| ApiError::internal(e.to_string()))?;
    let fingerprint = fingerprint(&input);
    // The raw start answers whether a run was started or an open one found (conflict
    // policy "use existing"), which the typed start does not say.
    let start = StartWorkflowExecutionRequest {
        namespace: state.temporal.namespace.clone(),
        workflow_id: id.clone(),
        workflow_type: Some(WorkflowType {
            name: WORKFLOW_TYPE.into(),
        }),
        task_queue: Some(TaskQueue {
            name: state.temporal.task_queue.clone(),
            kind: TaskQueueKind::Normal as i32,
            normal_name: String::new(),
        }),
        input: Some(Payloads {
            payloads: vec![activity_worker::payload::from_json(&input)],
        }),
        identity: IDENTITY.into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        // A keyed request maps to its run for good: a retry after the run closed finds it
        // rather than starting the work again.
        workflow_id_reuse_policy: if key.is_some() {
            WorkflowIdReusePolicy::RejectDuplicate
        } else {
            WorkflowIdReusePolicy::AllowDuplicate
        } as i32,
        workflow_id_conflict_policy: WorkflowIdConflictPolicy::UseExisting as i32,
        // Who started it, visible in the Web UI and every client's describe.
        memo: Some(Memo {
            fields: [
                (
                    "started_by".to_string(),
                    activity_worker::payload::from_json(&Value::String(caller.who.clone())),
                ),
                (
                    FINGERPRINT_MEMO.to_string(),
                    activity_worker::payload::from_json(&Value::String(fingerprint.clone())),
                ),
            ]
            .into(),
        }),
        request_eager_execution: state.settings.eager_workflow_start,
        ..Default::default()
    };
    let answer =
        match WorkflowService::start_workflow_execution(&mut state.client()?, start.into_request())
            .await
        {
            Ok(answer) => answer.into_inner(),
            // A keyed request whose run has closed: that run, if this is its request.
            Err(e) if key.is_some() && e.code() == Code::AlreadyExists => {
                let (run_id, theirs) = existing(&state, &id).await?;
                same_request(&id, true, theirs.as_deref(), &fingerprint)?;
                return Ok((
                    StatusCode::OK,
                    Json(Started {
                        workflow_id: id,
                        run_id,
                    }),
                ));
            }
            Err(e) => return Err(rpc_error(&format!("could not start workflow {id}"), e)),
        };
    // An open run found under the id: answered only to the request that started it.
    if !answer.started {
        let (_, theirs) = existing(&state, &id).await?;
        same_request(&id, key.is_some(), theirs.as_deref(), &fingerprint)?;
    }
    // The client has handed an eager first task to this process's worker already.
    let eager = answer.eager_workflow_task.is_some();
    metrics::counter!(crate::observe::WORKFLOW_STARTS, "eager" => if eager { "true" } else { "false" })
        .increment(1);
    tracing::info!(
        workflow_id = id.as_str(),
        run_id = answer.run_id.as_str(),
        started = answer.started,
        eager,
        by = caller.who.as_str(),
        "UserWorkflow started or found running"
    );
    Ok((
        if answer.started {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(Started {
            workflow_id: id,
            run_id: answer.run_id,
        }),
    ))
}

/// The memo field holding a run's request fingerprint.
pub const FINGERPRINT_MEMO: &str = "request_sha256";

/// The fingerprint of a start request's workflow input (SHA-256 of its JSON).
pub fn fingerprint(input: &Value) -> String {
    hex::encode(Sha256::digest(input.to_string().as_bytes()))
}

/// The latest run under `id`: its run id and the fingerprint it was started with (none
/// for a run started before fingerprints were kept).
pub async fn existing(state: &ApiState, id: &str) -> Result<(String, Option<String>), ApiError> {
    let request = DescribeWorkflowExecutionRequest {
        namespace: state.temporal.namespace.clone(),
        execution: Some(WorkflowExecution {
            workflow_id: id.to_string(),
            run_id: String::new(),
        }),
    };
    let described =
        WorkflowService::describe_workflow_execution(&mut state.client()?, request.into_request())
            .await
            .map_err(|e| rpc_error(&format!("could not describe {id}"), e))?
            .into_inner();
    let info = described.workflow_execution_info.unwrap_or_default();
    let run_id = info.execution.map(|e| e.run_id).unwrap_or_default();
    let fingerprint = info
        .memo
        .and_then(|m| m.fields.get(FINGERPRINT_MEMO).cloned())
        .and_then(|p| activity_worker::payload::to_json(0, &p).ok())
        .and_then(|v| v.as_str().map(str::to_string));
    Ok((run_id, fingerprint))
}

/// Refuses a request (`ours`) that is not the one the run under `id` was started with
/// (`theirs`): `422` when it carries an `Idempotency-Key` (`keyed`), else `409`.
pub fn same_request(
    id: &str,
    keyed: bool,
    theirs: Option<&str>,
    ours: &str,
) -> Result<(), ApiError> {
    match theirs {
        Some(theirs) if theirs != ours && keyed => Err(ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "idempotency_key_reused",
            message: format!(
                "workflow {id} was started by another request with this Idempotency-Key; \
                 use a new key for a new request"
            ),
        }),
        Some(theirs) if theirs != ours => Err(ApiError {
            status: StatusCode::CONFLICT,
            code: "request_conflict",
            message: format!(
                "workflow {id} is running for another request on this user and action; \
                 wait for it to close, or send an Idempotency-Key"
            ),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_matches_only_the_run_it_started() {
        let a = fingerprint(&serde_json::json!({"user_id": "u", "email": "a@b.io"}));
        let b = fingerprint(&serde_json::json!({"user_id": "u", "email": "c@d.io"}));
        assert_ne!(a, b);
        assert!(same_request("w", false, Some(&a), &a).is_ok());
        assert!(same_request("w", false, None, &a).is_ok());
        assert_eq!(
            same_request("w", false, Some(&a), &b).unwrap_err().status,
            StatusCode::CONFLICT
        );
        assert_eq!(
            same_request("w", true, Some(&a), &b).unwrap_err().status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
}
