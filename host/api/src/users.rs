//! `GET /api/v1/users/{user_id}` and `GET /api/v1/notifications`: what the activities stored.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::Value;

use crate::json::ApiPath;
use crate::views::StoredUserView;
use crate::{ApiError, ApiState, ErrorBody, NOTIFICATIONS_STORE, USERS_STORE};

/// Longest id accepted in a path, in bytes.
pub const MAX_ID_BYTES: usize = 255;

/// Checks an id from a path: not empty, at most 255 bytes, printable ASCII without `/`.
pub fn check_id(field: &str, id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        return Err(ApiError::bad_request(
            "invalid_id",
            format!("{field} must be 1 to {MAX_ID_BYTES} bytes"),
        ));
    }
    if !id.chars().all(|c| c.is_ascii_graphic() && c != '/') {
        return Err(ApiError::bad_request(
            "invalid_id",
            format!("{field} may contain only printable ASCII without spaces or '/'"),
        ));
    }
    Ok(())
}

/// Checks a Temporal run id: a UUID.
pub fn check_run_id(run_id: &str) -> Result<(), ApiError> {
    uuid::Uuid::parse_str(run_id).map(|_| ()).map_err(|_| {
        ApiError::bad_request(
            "invalid_run_id",
            format!("run_id must be a UUID, found {run_id:?}"),
        )
    })
}

/// Runs a blocking store read off the async threads.
async fn read<T: Send + 'static>(
    state: &ApiState,
    op: impl FnOnce(&dyn activity_runtime::KeyValueBackend) -> Result<T, activity_runtime::KeyValueError>
        + Send
        + 'static,
) -> Result<T, ApiError> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || op(store.as_ref()))
        .await
        .map_err(|e| ApiError::internal(format!("store read interrupted: {e}")))?
        .map_err(|e| ApiError {
            status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
            code: "store_unavailable",
            message: e.to_string(),
        })
}

/// The stored user, or 404.
#[utoipa::path(get, operation_id = "show_user", path = "/api/v1/users/{user_id}", tag = "users",
    params(("user_id" = String, Path, description = "1 to 255 printable ASCII bytes, no '/'")),
    responses(
        (status = 200, description = "The stored user", body = StoredUserView),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody)))]
pub async fn show(
    State(state): State<Arc<ApiState>>,
    ApiPath(user_id): ApiPath<String>,
) -> Result<Json<StoredUserView>, ApiError> {
    check_id("user_id", &user_id)?;
    let key = format!("user:{user_id}");
    let bytes = read(&state, move |s| s.get(USERS_STORE, &key)).await?;
    let bytes = bytes.ok_or_else(|| {
        ApiError::not_found("user_not_found", format!("user {user_id:?} does not exist"))
    })?;
    serde_json::from_slice(&bytes)
        .map(Json)
        .map_err(|e| ApiError::internal(format!("stored user {user_id:?} is not a user: {e}")))
}

/// Notifications the host recorded (when no webhook is configured), oldest first.
#[utoipa::path(get, operation_id = "list_notifications", path = "/api/v1/notifications", tag = "users",
    responses((status = 200, description = "Notifications the host recorded (no webhook configured), oldest first: each what SendNotification recorded before it answered (the notification, its workflow and activity ids, `recorded_at_ms`)", body = Vec<Value>)))]
pub async fn notifications(
    State(state): State<Arc<ApiState>>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let items = read(&state, |s| {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = s.list_keys(NOTIFICATIONS_STORE, cursor)?;
            for key in page.keys {
                if let Some(v) = s.get(NOTIFICATIONS_STORE, &key)? {
                    out.push(serde_json::from_slice::<Value>(&v).unwrap_or(Value::Null));
                }
            }
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        // Keyed by workflow and activity id (a retry rewrites its record): ordered by the
        // time each was recorded; records from before that field first, in key order.
        out.sort_by_key(|n: &Value| n["recorded_at_ms"].as_u64().unwrap_or(0));
        Ok(out)
    })
    .await?;
    Ok(Json(items))
}
