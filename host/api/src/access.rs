//! Admin routes for API keys (`/api/v1/keys`) and secrets (`/api/v1/secrets`). A key's
//! token is answered once, when it is created; a secret's value never.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use activity_registry::access::{
    new_token, token_hash, AccessStore, ApiKey, Role, SealedSecret, SecretView,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::json::{ApiJson, ApiPath};
use crate::{ApiError, ApiState, ErrorBody};

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn store(state: &ApiState) -> Result<Arc<dyn AccessStore>, ApiError> {
    state
        .keys
        .as_ref()
        .map(|k| k.store().clone())
        .ok_or_else(|| ApiError::unavailable("store_unavailable", "this host keeps no API keys"))
}

/// Runs a store operation off the async threads.
async fn blocking<T: Send + 'static>(
    state: &ApiState,
    op: impl FnOnce(&dyn AccessStore) -> Result<T, activity_registry::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = store(state)?;
    tokio::task::spawn_blocking(move || op(store.as_ref()))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::unavailable("store_unavailable", e.to_string()))
}

/// Body of `POST /api/v1/keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// Who or what will hold it (1..100 characters).
    pub name: String,
    /// `admin`, `deployer`, `invoker` or `reader`.
    pub role: Role,
    /// Activity types it may act on; empty or absent: all.
    #[serde(default)]
    pub activities: Vec<String>,
    /// Invokes and workflow starts a minute; absent: `api.quotas.per_key_per_minute`.
    #[serde(default)]
    pub per_minute: Option<u32>,
    /// CPU milliseconds its invokes may use per minute, over the fleet; absent: no limit.
    #[serde(default)]
    pub cpu_ms_per_minute: Option<u64>,
    /// Key-value stores its deploys may grant (names, `prefix*`, `*`); absent: every store
    /// for a key of all activity types, none for a key limited to some.
    #[serde(default)]
    pub key_value_stores: Option<Vec<String>>,
    /// Secrets its deploys may grant, likewise.
    #[serde(default)]
    pub secrets: Option<Vec<String>>,
}

/// A created key: its record and, this once, its token.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedKey {
    /// The key as listed from now on.
    pub key: ApiKey,
    /// The bearer token. Shown once: only its hash is stored.
    pub token: String,
}

/// `POST /api/v1/keys`: creates an API key.
#[utoipa::path(post, operation_id = "create_key", path = "/api/v1/keys", tag = "access",
    request_body(content = NewKey, content_type = "application/json"),
    responses(
        (status = 201, description = "The key and its token (shown once)", body = CreatedKey),
        (status = 400, description = "Invalid name, role or activity type", body = ErrorBody),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody)))]
pub async fn create_key(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<NewKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let name = body.name.trim().to_string();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_field",
            "name must be 1 to 100 printable characters",
        ));
    }
    for activity in &body.activities {
        activity_registry::check_name(activity)
            .map_err(|e| ApiError::bad_request("invalid_field", format!("activities: {e}")))?;
    }
    if body.per_minute == Some(0) || body.cpu_ms_per_minute == Some(0) {
        return Err(ApiError::bad_request(
            "invalid_field",
            "per_minute and cpu_ms_per_minute must be at least 1",
        ));
    }
    let (id, token) = new_token().map_err(|e| ApiError::internal(e.to_string()))?;
    let key = ApiKey {
        id,
        name,
        role: body.role,
        activities: body.activities,
        per_minute: body.per_minute,
        cpu_ms_per_minute: body.cpu_ms_per_minute,
        key_value_stores: body.key_value_stores,
        secrets: body.secrets,
        created_at_ms: now_ms(),
        created_by: caller.who.clone(),
        revoked_at_ms: None,
    };
    let hash = token_hash(&token);
    let stored = key.clone();
    blocking(&state, move |s| s.add_key(&hash, &stored)).await?;
    tracing::info!(
        key = key.id.as_str(),
        role = key.role.as_str(),
        by = caller.who.as_str(),
        "API key created"
    );
    Ok((StatusCode::CREATED, Json(CreatedKey { key, token })))
}

/// `GET /api/v1/keys`: every key, revoked ones included; never a token.
#[utoipa::path(get, operation_id = "list_keys", path = "/api/v1/keys", tag = "access",
    responses(
        (status = 200, description = "The keys", body = Vec<ApiKey>),
        (status = 503, description = "The store is unavailable", body = ErrorBody)))]
pub async fn list_keys(State(state): State<Arc<ApiState>>) -> Result<Json<Vec<ApiKey>>, ApiError> {
    blocking(&state, |s| s.keys()).await.map(Json)
}

/// `DELETE /api/v1/keys/{id}`: revokes a key on every host (within half a second).
#[utoipa::path(delete, operation_id = "revoke_key", path = "/api/v1/keys/{id}", tag = "access",
    params(("id" = String, Path, description = "The key's id (key_...)")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such key", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody)))]
pub async fn revoke_key(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let lookup = id.clone();
    if !blocking(&state, move |s| s.revoke_key(&lookup, now_ms())).await? {
        return Err(ApiError::not_found("no_such_key", format!("no key {id:?}")));
    }
    tracing::info!(
        key = id.as_str(),
        by = caller.who.as_str(),
        "API key revoked"
    );
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `PUT /api/v1/secrets/{name}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSecret {
    /// The value. Stored sealed; never answered, logged or handed to a guest.
    pub value: String,
    /// Hosts (as in `allowed_hosts`: `api.example.com`, `*.example.com`, with an optional
    /// port) the value may be sent to, over TLS (https) only; `http://api.example.com` also
    /// lets it go over plain HTTP. At least one.
    pub hosts: Vec<String>,
}

/// `PUT /api/v1/secrets/{name}`: sets a secret (sealed with the host's secrets key).
#[utoipa::path(put, operation_id = "set_secret", path = "/api/v1/secrets/{name}", tag = "access",
    params(("name" = String, Path, description = "Secret name: letters, digits, '_', '-', '.'")),
    request_body(content = NewSecret, content_type = "application/json"),
    responses(
        (status = 200, description = "The secret, without its value", body = SecretView),
        (status = 400, description = "Invalid name, value or hosts", body = ErrorBody),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorBody),
        (status = 409, description = "The host has no secrets key", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody)))]
pub async fn set_secret(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<NewSecret>,
) -> Result<Json<SecretView>, ApiError> {
    activity_registry::check_name(&name)
        .map_err(|e| ApiError::bad_request("invalid_name", e.to_string()))?;
    if body.value.is_empty() || body.value.len() > 64 * 1024 {
        return Err(ApiError::bad_request(
            "invalid_field",
            "value must be 1 byte to 64 KiB",
        ));
    }
    let unusable = |h: &String| {
        let (_, pattern) = activity_runtime::egress::secret_binding(h);
        pattern.is_empty() || pattern == "*" || pattern.contains("://") || pattern.contains('/')
    };
    if body.hosts.is_empty() || body.hosts.iter().any(unusable) {
        return Err(ApiError::bad_request(
            "invalid_field",
            "hosts must name at least one host the value may be sent to (not `*`): host[:port], over TLS only, or http://host[:port] to allow plain HTTP",
        ));
    }
    let key = state.secrets_key.clone().ok_or_else(|| ApiError {
        status: StatusCode::CONFLICT,
        code: "no_secrets_key",
        message: "this host has no secrets key: set ACTIVITY_HOST_SECRETS_KEY or registry.secrets_key_file".into(),
    })?;
    let sealed = key
        .seal(&name, &body.value)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let secret = SealedSecret {
        name: name.clone(),
        hosts: body.hosts.iter().map(|h| h.trim().to_string()).collect(),
        sealed,
        set_at_ms: now_ms(),
        set_by: caller.who.clone(),
    };
    let view = SecretView::from(&secret);
    blocking(&state, move |s| s.put_secret(&secret)).await?;
    state.registry.reload_secrets().await;
    tracing::info!(
        secret = name.as_str(),
        by = caller.who.as_str(),
        "secret set"
    );
    Ok(Json(view))
}

/// `GET /api/v1/secrets`: names and hosts, never values.
#[utoipa::path(get, operation_id = "list_secrets", path = "/api/v1/secrets", tag = "access",
    responses(
        (status = 200, description = "The secrets, without their values", body = Vec<SecretView>),
        (status = 503, description = "The store is unavailable", body = ErrorBody)))]
pub async fn list_secrets(
    State(state): State<Arc<ApiState>>,
) -> Result<Json<Vec<SecretView>>, ApiError> {
    let secrets = blocking(&state, |s| s.secrets()).await?;
    Ok(Json(secrets.iter().map(SecretView::from).collect()))
}

/// `DELETE /api/v1/secrets/{name}`.
#[utoipa::path(delete, operation_id = "remove_secret", path = "/api/v1/secrets/{name}", tag = "access",
    params(("name" = String, Path, description = "Secret name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such secret", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody)))]
pub async fn remove_secret(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let lookup = name.clone();
    if !blocking(&state, move |s| s.remove_secret(&lookup)).await? {
        return Err(ApiError::not_found(
            "no_such_secret",
            format!("no secret {name:?}"),
        ));
    }
    state.registry.reload_secrets().await;
    tracing::info!(
        secret = name.as_str(),
        by = caller.who.as_str(),
        "secret removed"
    );
    Ok(StatusCode::NO_CONTENT)
}

/// Query of `GET /api/v1/activities/{name}/egress`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EgressQuery {
    /// Only requests made at or after this time (ms since the Unix epoch); default: all kept.
    pub since: Option<u64>,
}

/// `GET /api/v1/activities/{name}/egress?since=`: the outgoing requests this host's calls
/// of `name` made (allowed and refused), oldest first; the last
/// `runtime.egress.audit_kept` of them.
#[utoipa::path(get, operation_id = "activity_egress", path = "/api/v1/activities/{name}/egress", tag = "activities",
    params(("name" = String, Path, description = "Activity type name"), EgressQuery),
    responses(
        (status = 200, description = "The requests", body = Vec<activity_runtime::egress::EgressRecord>),
        (status = 400, description = "Invalid name or query", body = ErrorBody)))]
pub async fn egress(
    State(state): State<Arc<ApiState>>,
    ApiPath(name): ApiPath<String>,
    crate::json::ApiQuery(query): crate::json::ApiQuery<EgressQuery>,
) -> Result<Json<Vec<activity_runtime::egress::EgressRecord>>, ApiError> {
    activity_registry::check_name(&name)
        .map_err(|e| ApiError::bad_request("invalid_name", e.to_string()))?;
    Ok(Json(
        state
            .registry
            .runtime()
            .egress()
            .recent(&name, query.since.unwrap_or(0)),
    ))
}
