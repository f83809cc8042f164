//! The activity routes: deploy (`PUT` with the component's bytes, or a JSON body naming an
//! OCI artifact to pull), list, show, roll back, remove.

use std::sync::Arc;

use activity_oci::{ArtifactRef, OciClient, OciError};
use activity_registry::{
    ActivityDetails, ActivitySummary, ArtifactSource, DeployOutcome, DeployRequest, Registry,
    RegistryError, VersionView,
};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;

use crate::auth::Caller;
use crate::json::{ApiJson, ApiPath};
use crate::{ApiError, ApiState, ErrorBody};

/// Content types accepted for a component.
const WASM_CONTENT_TYPES: &[&str] = &["application/wasm", "application/octet-stream"];

pub(crate) fn registry_error(e: RegistryError) -> ApiError {
    let (status, code) = match &e {
        RegistryError::InvalidName(_) => (StatusCode::BAD_REQUEST, "invalid_name"),
        RegistryError::Empty => (StatusCode::BAD_REQUEST, "empty_body"),
        RegistryError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "component_too_large"),
        RegistryError::Refused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "component_refused"),
        RegistryError::NotFound(_) => (StatusCode::NOT_FOUND, "activity_not_found"),
        RegistryError::VersionNotFound { .. } => (StatusCode::NOT_FOUND, "version_not_found"),
        RegistryError::NoEarlierVersion(_) => (StatusCode::CONFLICT, "no_earlier_version"),
        RegistryError::NoCandidate(_) => (StatusCode::CONFLICT, "no_candidate"),
        RegistryError::InvalidRamp(_) => (StatusCode::BAD_REQUEST, "invalid_ramp"),
        RegistryError::OutsidePolicy(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "outside_egress_policy")
        }
        RegistryError::OutsideGrantPolicy(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "outside_grant_policy")
        }
        RegistryError::NoSuchSecret(_) => (StatusCode::UNPROCESSABLE_ENTITY, "no_such_secret"),
        RegistryError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "registry_unavailable"),
        RegistryError::Stored { .. } => {
            (StatusCode::INTERNAL_SERVER_ERROR, "stored_version_unusable")
        }
    };
    ApiError {
        status,
        code,
        message: e.to_string(),
    }
}

fn oci_error(e: OciError) -> ApiError {
    let (status, code) = match &e {
        OciError::InvalidReference { .. } => (StatusCode::BAD_REQUEST, "invalid_reference"),
        OciError::NotFound { .. } => (StatusCode::NOT_FOUND, "artifact_not_found"),
        OciError::Unreachable { .. } => {
            (StatusCode::SERVICE_UNAVAILABLE, "oci_registry_unreachable")
        }
        OciError::Unauthorized { .. } => (StatusCode::BAD_GATEWAY, "oci_registry_unauthorized"),
        OciError::Registry { .. } | OciError::Invalid(_) => {
            (StatusCode::BAD_GATEWAY, "oci_registry_failed")
        }
        OciError::DigestMismatch(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "artifact_digest_mismatch")
        }
        OciError::NotWasm(_) | OciError::NotAComponent(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "not_a_wasm_artifact")
        }
        OciError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "component_too_large"),
    };
    ApiError {
        status,
        code,
        message: e.to_string(),
    }
}

/// Pulls the artifact `source` names (`oci://REF`) and deploys it as `name`, recording the
/// reference and the manifest digest with the version. A pull that fails changes nothing.
pub async fn deploy_reference(
    registry: &Registry,
    oci: &OciClient,
    name: &str,
    source: &str,
    mut request: DeployRequest,
) -> Result<DeployOutcome, ApiError> {
    activity_registry::check_name(name).map_err(registry_error)?;
    if !source.starts_with(activity_oci::SCHEME) {
        return Err(ApiError::bad_request(
            "invalid_reference",
            format!("source must be an OCI reference written oci://REGISTRY/REPOSITORY:TAG or oci://REGISTRY/REPOSITORY@sha256:DIGEST, found {source:?}"),
        ));
    }
    let reference = ArtifactRef::parse(source).map_err(oci_error)?;
    let pulled = oci
        .pull(&reference, registry.max_component_bytes() as u64)
        .await
        .map_err(oci_error)?;
    request.source = Some(ArtifactSource {
        reference: reference.to_string(),
        manifest_digest: pulled.manifest_digest,
    });
    registry
        .deploy(name, pulled.bytes, request)
        .await
        .map_err(registry_error)
}

/// A deploy by reference: the JSON body of `PUT /api/v1/activities/{name}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeploySource {
    /// The OCI artifact to pull: `oci://REGISTRY/REPOSITORY:TAG` or
    /// `oci://REGISTRY/REPOSITORY@sha256:DIGEST` (then the manifest must hash to it).
    #[schema(example = "oci://localhost:5000/team/validate-user:1.2.0")]
    pub source: String,
}

/// Reads grants, limits and the export from the query string:
/// `allow_host`, `kv_store` and `config=KEY=VALUE` (repeatable), `export`,
/// `max_memory_bytes`, `max_execution_ms`, `max_output_bytes`, `fuel`.
pub(crate) fn deploy_request(
    query: Option<&str>,
    state: &ApiState,
    by: &str,
) -> Result<DeployRequest, ApiError> {
    let mut request = DeployRequest {
        limits: state.default_limits,
        deployed_by: by.to_string(),
        ..Default::default()
    };
    let number = |key: &str, value: &str| {
        value.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_parameter",
                format!("{key} must be a positive integer, found {value:?}"),
            )
        })
    };
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "allow_host" if !value.is_empty() => request.grants.allowed_hosts.push(value.into_owned()),
            "kv_store" if !value.is_empty() => request.grants.key_value_stores.push(value.into_owned()),
            "secret" if !value.is_empty() => request.grants.secrets.push(value.into_owned()),
            "config" => {
                let (k, v) = value.split_once('=').ok_or_else(|| {
                    ApiError::bad_request("invalid_parameter", format!("config must be KEY=VALUE, found {value:?}"))
                })?;
                request.grants.config.insert(k.to_string(), v.to_string());
            }
            "export" if !value.is_empty() => request.export = Some(value.into_owned()),
            "max_memory_bytes" => request.limits.max_memory_bytes = number(&key, &value)?,
            "max_execution_ms" => request.limits.max_execution_ms = number(&key, &value)?,
            "max_output_bytes" => request.limits.max_output_bytes = number(&key, &value)?,
            "fuel" => request.limits.fuel = Some(number(&key, &value)?),
            "max_concurrent" => {
                request.limits.max_concurrent = u32::try_from(number(&key, &value)?).map_err(|_| {
                    ApiError::bad_request("invalid_parameter", "max_concurrent is too large")
                })?
            }
            "rollout" => {
                request.rollout = Some(value.parse().map_err(|e: String| {
                    ApiError::bad_request("invalid_parameter", e)
                })?)
            }
            "ramp_percent" => {
                let percent = value.parse::<u64>().ok().filter(|p| *p <= 100).ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_ramp",
                        format!("ramp_percent must be an integer from 0 to 100, found {value:?}"),
                    )
                })?;
                request.ramp_percent = Some(percent as u8);
            }
            other => {
                return Err(ApiError::bad_request(
                    "invalid_parameter",
                    format!("unknown or empty parameter {other:?}; expected allow_host, kv_store, secret, config, export, max_memory_bytes, max_execution_ms, max_output_bytes, fuel, max_concurrent, rollout, ramp_percent"),
                ))
            }
        }
    }
    Ok(request)
}

/// `PUT /api/v1/activities/{name}`: deploys the body (the component's bytes, or a JSON
/// `{"source": "oci://..."}` naming an artifact the host pulls) as activity type `name`.
/// `201` when a new version became active, `200` when the same one already was.
#[utoipa::path(put, operation_id = "deploy_activity", path = "/api/v1/activities/{name}", tag = "activities",
    params(("name" = String, Path, description = "Activity type name: letters, digits, '_', '-', '.'"), DeployParams),
    request_body(description = "The component's bytes, or the OCI artifact to pull", content(
        (Vec<u8> = "application/wasm"),
        (DeploySource = "application/json"))),
    responses(
        (status = 201, description = "A new version is active", body = DeployOutcome),
        (status = 200, description = "The same version was already active", body = DeployOutcome),
        (status = 400, description = "Invalid name, empty body, parameter or reference", body = ErrorBody),
        (status = 404, description = "The OCI artifact is not in its registry", body = ErrorBody),
        (status = 413, description = "Over registry.max_component_bytes", body = ErrorBody),
        (status = 415, description = "Neither application/wasm nor application/json", body = ErrorBody),
        (status = 422, description = "Not a component that fits, not a Wasm artifact, or a digest mismatch; nothing changed", body = ErrorBody),
        (status = 502, description = "The OCI registry refused the host's credentials or failed", body = ErrorBody),
        (status = 503, description = "The registry store or the OCI registry is unavailable", body = ErrorBody)))]
pub async fn deploy(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(name): ApiPath<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<DeployOutcome>), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let by_reference = essence.eq_ignore_ascii_case("application/json");
    if !by_reference && !WASM_CONTENT_TYPES.contains(&essence) {
        return Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "unsupported_media_type",
            message: format!("send the component's bytes with Content-Type: application/wasm, or {{\"source\": \"oci://...\"}} with Content-Type: application/json (found {content_type:?})"),
        });
    }
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "component_too_large",
            message: format!(
                "the component is larger than {} bytes",
                state.registry.max_component_bytes()
            ),
        },
        status => ApiError {
            status,
            code: "invalid_body",
            message: e.body_text(),
        },
    })?;
    activity_registry::check_name(&name).map_err(registry_error)?;
    let request = deploy_request(query.as_deref(), &state, &caller.who)?;
    if let Some(key) = &caller.key {
        // A key grants only what its scope names.
        let whose = format!("the grants of {}", caller.who);
        key.grant_scope()
            .check(&request.grants, &request.limits, &whose)
            .map_err(|why| ApiError {
                status: StatusCode::FORBIDDEN,
                code: "outside_key_scope",
                message: why,
            })?;
    }
    let outcome = if by_reference {
        if body.starts_with(b"\0asm") {
            return Err(ApiError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code: "unsupported_media_type",
                message: "the body is a WebAssembly binary sent as application/json: send it with Content-Type: application/wasm".into(),
            });
        }
        let DeploySource { source } = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("malformed_json", e.to_string()))?;
        deploy_reference(&state.registry, &state.oci, &name, &source, request).await?
    } else {
        state
            .registry
            .deploy(&name, body.to_vec(), request)
            .await
            .map_err(registry_error)?
    };
    let status = if outcome.changed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(outcome)))
}

/// `GET /api/v1/activities`.
#[utoipa::path(get, operation_id = "list_activities", path = "/api/v1/activities", tag = "activities",
    responses((status = 200, description = "Activity types and their active versions (a key limited to some types: those)", body = Vec<ActivitySummary>)))]
pub async fn list(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<ActivitySummary>>, ApiError> {
    let mut types = state.registry.list().await.map_err(registry_error)?;
    // A key limited to some types sees those only.
    types.retain(|t| caller.covers(&t.name));
    Ok(Json(types))
}

/// `GET /api/v1/activities/{name}`.
#[utoipa::path(get, operation_id = "show_activity", path = "/api/v1/activities/{name}", tag = "activities",
    params(("name" = String, Path, description = "Activity type name")),
    responses(
        (status = 200, description = "The activity type's versions", body = ActivityDetails),
        (status = 400, description = "Invalid name", body = ErrorBody),
        (status = 404, description = "Not deployed", body = ErrorBody)))]
pub async fn show(
    State(state): State<Arc<ApiState>>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<ActivityDetails>, ApiError> {
    state
        .registry
        .details(&name)
        .await
        .map(Json)
        .map_err(registry_error)
}

/// The WIT signature of `name`'s version on this host: `400` for an invalid name, `404` when
/// this host holds no version of it. What invoke checks arguments against, without compiling.
pub(crate) fn deployed_signature(
    state: &ApiState,
    name: &str,
) -> Result<Arc<activity_runtime::Signature>, ApiError> {
    activity_registry::check_name(name)
        .map_err(|e| ApiError::bad_request("invalid_name", e.to_string()))?;
    let (_, signature) = state.registry.signature(name).ok_or_else(|| {
        ApiError::not_found(
            "activity_not_found",
            format!("activity type {name:?} is not deployed"),
        )
    })?;
    Ok(signature)
}

/// `GET /api/v1/activities/{name}/schema`: the JSON Schema (2020-12) of the active version's
/// parameters, result and failure, from its WIT signature.
#[utoipa::path(get, operation_id = "activity_schema", path = "/api/v1/activities/{name}/schema", tag = "activities",
    params(("name" = String, Path, description = "Activity type name")),
    responses(
        (status = 200, description = "A JSON Schema with `parameters` (the arguments array), `result` and `failure`", body = Object, content_type = "application/schema+json"),
        (status = 400, description = "Invalid name", body = ErrorBody),
        (status = 404, description = "Not deployed on this host", body = ErrorBody)))]
pub async fn schema(
    State(state): State<Arc<ApiState>>,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    let signature = deployed_signature(&state, &name)?;
    let mut response = Json(signature.json_schema(&name)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/schema+json"),
    );
    Ok(response)
}

/// Body of a rollback: the digest to return to, or nothing for the previous version.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// `sha256:<hex>` (or the hex alone) of the version to return to.
    digest: Option<String>,
}

/// Grants, limits and export of a deployment, in the query string.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct DeployParams {
    /// Host the activity may call over outgoing HTTP (repeatable): `example.com`,
    /// `example.com:8443`, `*.example.com`, `*` (public addresses only), or an address or
    /// range (`10.0.0.5:8080`, `10.0.0.0/8`), which loopback, link-local and private
    /// destinations need. Bounded by `runtime.egress.allowed_hosts`.
    allow_host: Option<Vec<String>>,
    /// Key-value store the activity may open (repeatable).
    kv_store: Option<Vec<String>>,
    /// Secret the activity may use (repeatable): it reads a placeholder under the name
    /// through wasi:config; the host substitutes the value toward the secret's hosts only.
    secret: Option<Vec<String>>,
    /// `KEY=VALUE` read through wasi:config (repeatable).
    config: Option<Vec<String>>,
    /// The export to call, when not the type name in kebab case.
    export: Option<String>,
    /// Memory limit per call, bytes.
    max_memory_bytes: Option<u64>,
    /// Time limit per call, milliseconds.
    max_execution_ms: Option<u64>,
    /// Largest result, bytes.
    max_output_bytes: Option<u64>,
    /// Fuel budget per call.
    fuel: Option<u64>,
    /// Calls of this type running at once on one host (default: twice the cores, at least 4).
    max_concurrent: Option<u32>,
    /// How the version reaches calls: `immediate`, `pinned` or `ramp` (default:
    /// `registry.rollout.policy`).
    rollout: Option<activity_registry::rollout::RolloutPolicy>,
    /// With `rollout=ramp`, the share of runs the candidate gets, 0..100 (default:
    /// `registry.rollout.ramp_percent`).
    ramp_percent: Option<u8>,
}

/// Body of a ramp: the candidate's new share.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Ramp {
    /// Percent of runs, 0..100.
    pub percent: u64,
}

/// Body of an abort: why, for the event.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Abort {
    /// Why the candidate is dropped.
    pub reason: Option<String>,
}

/// `POST /api/v1/activities/{name}/ramp`: gives the candidate another share of runs.
#[utoipa::path(post, operation_id = "ramp_activity", path = "/api/v1/activities/{name}/ramp", tag = "activities",
    params(("name" = String, Path, description = "Activity type name")),
    request_body(content = Ramp, content_type = "application/json"),
    responses(
        (status = 200, description = "The activity type with its candidate's new share", body = ActivityDetails),
        (status = 400, description = "Invalid name, body or percent", body = ErrorBody),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorBody),
        (status = 404, description = "Not deployed", body = ErrorBody),
        (status = 409, description = "No candidate", body = ErrorBody)))]
pub async fn ramp(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<Ramp>,
) -> Result<Json<ActivityDetails>, ApiError> {
    let registry = &state.registry;
    registry
        .ramp(&name, body.percent, &caller.who)
        .await
        .map_err(registry_error)?;
    registry
        .details(&name)
        .await
        .map(Json)
        .map_err(registry_error)
}

/// `POST /api/v1/activities/{name}/promote`: makes the candidate active for every run
/// (runs pinned to the earlier version keep it).
#[utoipa::path(post, operation_id = "promote_activity", path = "/api/v1/activities/{name}/promote", tag = "activities",
    params(("name" = String, Path, description = "Activity type name")),
    responses(
        (status = 200, description = "The version now active", body = VersionView),
        (status = 400, description = "Invalid name", body = ErrorBody),
        (status = 404, description = "Not deployed", body = ErrorBody),
        (status = 409, description = "No candidate", body = ErrorBody)))]
pub async fn promote(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<VersionView>, ApiError> {
    state
        .registry
        .promote(&name, &caller.who)
        .await
        .map(Json)
        .map_err(registry_error)
}

/// `POST /api/v1/activities/{name}/abort`: drops the candidate; later calls and retries
/// go to the active version.
#[utoipa::path(post, operation_id = "abort_activity", path = "/api/v1/activities/{name}/abort", tag = "activities",
    params(("name" = String, Path, description = "Activity type name")),
    request_body(content = Option<Abort>, content_type = "application/json", description = "Optional reason"),
    responses(
        (status = 200, description = "The activity type without its candidate", body = ActivityDetails),
        (status = 400, description = "Invalid name or body", body = ErrorBody),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorBody),
        (status = 404, description = "Not deployed", body = ErrorBody),
        (status = 409, description = "No candidate", body = ErrorBody)))]
pub async fn abort(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(name): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ActivityDetails>, ApiError> {
    let Abort { reason } = optional_json(&state, &headers, body).await?;
    let registry = &state.registry;
    registry
        .abort(&name, &caller.who, reason)
        .await
        .map_err(registry_error)?;
    registry
        .details(&name)
        .await
        .map(Json)
        .map_err(registry_error)
}

/// An optional JSON body: empty is the default value, anything else must be JSON of `T`.
async fn optional_json<T: serde::de::DeserializeOwned + Default>(
    state: &Arc<ApiState>,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<T, ApiError> {
    if body.is_empty() {
        return Ok(T::default());
    }
    let request = axum::http::Request::builder()
        .header(
            header::CONTENT_TYPE,
            headers
                .get(header::CONTENT_TYPE)
                .cloned()
                .unwrap_or(header::HeaderValue::from_static("")),
        )
        .body(axum::body::Body::from(body))
        .map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?;
    let ApiJson(r) =
        <ApiJson<T> as axum::extract::FromRequest<Arc<ApiState>>>::from_request(request, state)
            .await?;
    Ok(r)
}

/// `POST /api/v1/activities/{name}/rollback`.
#[utoipa::path(post, operation_id = "rollback_activity", path = "/api/v1/activities/{name}/rollback", tag = "activities",
    params(("name" = String, Path, description = "Activity type name")),
    request_body(content = Option<Rollback>, content_type = "application/json", description = "Empty for the previous version, or the digest to return to"),
    responses(
        (status = 200, description = "The version now active", body = VersionView),
        (status = 400, description = "Invalid name or body", body = ErrorBody),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorBody),
        (status = 404, description = "Not deployed, or no such version", body = ErrorBody),
        (status = 409, description = "No earlier version", body = ErrorBody)))]
pub async fn rollback(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(name): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<VersionView>, ApiError> {
    // An empty body means "the previous version"; otherwise it must be JSON.
    let target: Rollback = optional_json(&state, &headers, body).await?;
    state
        .registry
        .rollback(&name, target.digest.as_deref(), &caller.who)
        .await
        .map(Json)
        .map_err(registry_error)
}

/// `DELETE /api/v1/activities/{name}`.
#[utoipa::path(delete, operation_id = "remove_activity", path = "/api/v1/activities/{name}", tag = "activities",
    params(("name" = String, Path, description = "Activity type name")),
    responses(
        (status = 204, description = "Removed with its history"),
        (status = 400, description = "Invalid name", body = ErrorBody),
        (status = 404, description = "Not deployed", body = ErrorBody)))]
pub async fn remove(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.registry.remove(&name).await.map_err(registry_error)?;
    tracing::info!(
        activity = name.as_str(),
        by = caller.who.as_str(),
        "activity type removed"
    );
    Ok(StatusCode::NO_CONTENT)
}
