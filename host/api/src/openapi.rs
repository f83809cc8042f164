//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations and
//! types as the router is built, served at `/api/v1/openapi.json` and rendered at `/docs` by
//! Swagger UI, whose files the host serves itself (`/docs/{file}`): they come from the zip the
//! `utoipa-swagger-ui-vendored` crate carries (crates.io), read once at the first request, so
//! the page loads nothing from outside the host and works with no internet.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, OnceLock};

use activity_runtime::Signature;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{json, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The error body every 4xx and 5xx carries.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_field`, `temporal_unavailable`.
    code: String,
    /// What went wrong, naming the field when there is one.
    message: String,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_default()
            .add_security_scheme(
                "api_key",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

/// Marks every route by what it needs ([`crate::auth::ROUTES`]): the bearer scheme, the
/// role in `x-required-role`, `401` and `403`, and `429` where rate limits apply. One place,
/// from the same table the router enforces.
pub fn with_roles(doc: &utoipa::openapi::OpenApi) -> Value {
    use activity_registry::access::Need;
    let mut value = serde_json::to_value(doc).unwrap_or_else(|_| json!({}));
    let error = json!({"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}});
    if let Some(paths) = value.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in item.iter_mut() {
                let need = crate::auth::need_of(&method.to_uppercase(), path);
                let role = match need {
                    Some(Need::Public) | None => continue,
                    Some(Need::Read) => "reader",
                    Some(Need::Invoke) => "invoker",
                    Some(Need::Deploy) => "deployer",
                    Some(Need::Admin) => "admin",
                };
                op["security"] = json!([{"api_key": []}]);
                op["x-required-role"] = json!(role);
                let responses = &mut op["responses"];
                responses["401"] = json!({"description": "No bearer token, or not a live key (when auth is on)", "content": error});
                responses["403"] = json!({"description": format!("The caller's role or activity types do not allow this route (needs {role})"), "content": error});
                if need == Some(Need::Invoke) && method == "post" && !path.ends_with("/cancel") {
                    responses["429"] = json!({"description": "Over a rate limit (api.quotas or the key's per_minute); see Retry-After", "content": error,
                        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}}});
                }
            }
        }
    }
    value
}

/// The document's fixed part; the router adds the paths.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "activity-host",
        description = "Serverless WebAssembly activity host for Temporal: start and follow `UserWorkflow`, deploy, roll back and invoke activity components. Errors are `{\"error\":{\"code\",\"message\"}}`."
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
    tags(
        (name = "workflows", description = "UserWorkflow: start, follow, cancel, list"),
        (name = "activities", description = "Deployed activity components"),
        (name = "access", description = "API keys and secrets (admin)"),
        (name = "invoke", description = "Run a deployed activity once as a Temporal standalone activity"),
        (name = "users", description = "What the reference activities stored"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
pub struct ApiDoc;

/// The document as JSON, set once per process.
static BASE: OnceLock<Value> = OnceLock::new();

/// Keeps the document the router was built with, marked by role ([`with_roles`]).
pub fn publish(doc: &utoipa::openapi::OpenApi) {
    BASE.get_or_init(|| with_roles(doc));
}

/// The typed operation of one deployed activity: `POST /api/v1/activities/{name}/invoke`
/// with the activity's own argument and result schemas, from its WIT signature.
fn invoke_operation(name: &str, signature: &Signature) -> Value {
    let schema = signature.json_schema(name);
    let parameters = schema["properties"]["parameters"].clone();
    let result = schema["properties"]["result"].clone();
    let failure = schema["properties"]["failure"].clone();
    let with_options = json!({
        "type": "object",
        "properties": {
            "args": parameters,
            "activity_id": {"type": "string"},
            "start_to_close_ms": {"type": "integer", "minimum": 1},
            "schedule_to_close_ms": {"type": "integer", "minimum": 1},
            "maximum_attempts": {"type": "integer", "minimum": 0},
        },
        "required": ["args"],
    });
    let error = json!({"$ref": "#/components/schemas/ErrorBody"});
    json!({"post": {
        "operationId": format!("invoke_{name}"),
        "tags": ["deployed activities"],
        "summary": format!("Invoke {name}"),
        "security": [{"api_key": []}],
        "x-required-role": "invoker",
        "description": format!("Runs {name} once on the host's task queue, with the arguments its active version's WIT signature takes (the same operation as `/api/v1/activities/{{name}}/invoke`, typed)."),
        "parameters": [{"name": "wait", "in": "query", "required": false, "schema": {"type": "boolean"}}],
        "requestBody": {"required": true, "content": {"application/json": {
            "schema": {"oneOf": [parameters, with_options]},
        }}},
        "responses": {
            "200": {"description": "The execution closed: COMPLETED with `result`, or FAILED with `error`", "content": {"application/json": {"schema": {
                "type": "object",
                "properties": {
                    "activity_id": {"type": "string"},
                    "run_id": {"type": "string"},
                    "status": {"enum": ["COMPLETED", "FAILED", "CANCELED", "TERMINATED", "TIMED_OUT"]},
                    "version": {"type": "string"},
                    "result": result,
                    // An application failure carries the typed details; a timeout or a
                    // cancellation is a plain failure.
                    "error": {"anyOf": [failure, {"$ref": "#/components/schemas/FailureView"}]},
                },
                "required": ["activity_id", "run_id", "status"],
            }}}},
            "202": {"description": "Still running: poll `location`", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ExecutionView"}}}},
            "400": {"description": "The arguments do not fit the signature", "content": {"application/json": {"schema": error}}},
            "415": {"description": "The body is not JSON (Content-Type: application/json)", "content": {"application/json": {"schema": error}}},
            "404": {"description": "Not deployed on this host", "content": {"application/json": {"schema": error}}},
            "401": {"description": "No bearer token, or not a live key (when auth is on)", "content": {"application/json": {"schema": error}}},
            "403": {"description": "The caller's role or activity types do not allow this route (needs invoker)", "content": {"application/json": {"schema": error}}},
            "429": {"description": "Over a rate limit; see Retry-After", "content": {"application/json": {"schema": error}}, "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
            "503": {"description": "Temporal unavailable", "content": {"application/json": {"schema": error}}},
        },
    }})
}

/// The page at `/docs`. URLs are relative, so it also works behind a path prefix; no
/// validator badge (Swagger UI would call validator.swagger.io).
const DOCS_PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>activity-host API</title>
<link rel="icon" type="image/png" href="docs/favicon-32x32.png">
<link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({
  url: "api/v1/openapi.json",
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  validatorUrl: null,
  deepLinking: true,
});
</script>
</body>
</html>
"##;

/// The Swagger UI files `/docs` uses, by name, with their content types.
const ASSET_TYPES: &[(&str, &str)] = &[
    ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    ("swagger-ui.css", "text/css; charset=utf-8"),
    ("favicon-32x32.png", "image/png"),
];

/// Swagger UI's `dist/` files from the vendored zip, read once.
fn assets() -> &'static HashMap<&'static str, Vec<u8>> {
    static ASSETS: OnceLock<HashMap<&'static str, Vec<u8>>> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let mut out = HashMap::new();
        let bytes = std::io::Cursor::new(utoipa_swagger_ui_vendored::SWAGGER_UI_VENDORED);
        let Ok(mut zip) = zip::ZipArchive::new(bytes) else {
            tracing::error!("the vendored Swagger UI archive does not open: /docs has no assets");
            return out;
        };
        for i in 0..zip.len() {
            let Ok(mut file) = zip.by_index(i) else {
                continue;
            };
            let Ok(path) = file.name().map(|p| p.to_string()) else {
                continue;
            };
            let Some((_, name)) = path.split_once("/dist/") else {
                continue;
            };
            let Some(&(name, _)) = ASSET_TYPES.iter().find(|(n, _)| *n == name) else {
                continue;
            };
            let mut content = Vec::new();
            if file.read_to_end(&mut content).is_ok() {
                out.insert(name, content);
            }
        }
        out
    })
}

/// `GET /api/v1/openapi.json`.
#[utoipa::path(get, operation_id = "openapi", path = "/api/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "This OpenAPI document", content_type = "application/json")))]
pub async fn openapi_json(State(state): State<Arc<crate::ApiState>>) -> Response {
    let mut doc = BASE.get().cloned().unwrap_or_else(|| json!({}));
    // What is deployed now: one typed invoke operation per activity this host holds.
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (name, signature) in state.registry.signatures() {
            let path = format!("/api/v1/activities/{name}/invoke");
            paths.insert(path, invoke_operation(&name, &signature));
        }
    }
    axum::Json(doc).into_response()
}

/// `GET /docs`: Swagger UI over this document, every file served by the host.
#[utoipa::path(get, operation_id = "docs", path = "/docs", tag = "operations",
    responses((status = 200, description = "The API reference, rendered from the OpenAPI document", content_type = "text/html")))]
pub async fn docs() -> Html<&'static str> {
    Html(DOCS_PAGE)
}

/// `GET /docs/{file}`: the page's scripts, stylesheet and icon.
#[utoipa::path(get, operation_id = "docs_asset", path = "/docs/{file}", tag = "operations",
    params(("file" = String, Path, description = "swagger-ui-bundle.js, swagger-ui.css or favicon-32x32.png")),
    responses(
        (status = 200, description = "The file"),
        (status = 404, description = "No such file", body = ErrorBody)))]
pub async fn docs_asset(Path(file): Path<String>) -> Response {
    let content_type = ASSET_TYPES
        .iter()
        .find(|(name, _)| *name == file)
        .map(|(_, t)| *t);
    match (content_type, assets().get(file.as_str())) {
        (Some(content_type), Some(bytes)) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            bytes.as_slice(),
        )
            .into_response(),
        _ => crate::ApiError::not_found("no_such_file", format!("/docs has no file {file:?}"))
            .into_response(),
    }
}

/// `GET /healthz`: `ok`, or `503` when this process's worker has stopped for good (an
/// error it will not recover from; a worker not started yet is `/readyz`'s business), so
/// that an orchestrator restarts the process.
#[utoipa::path(get, operation_id = "healthz", path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = String),
        (status = 503, description = "The worker stopped for good: the body says why", body = String)))]
pub async fn healthz(State(state): State<Arc<crate::ApiState>>) -> Response {
    let failed = state
        .readiness
        .worker_failed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    match failed {
        None => "ok".into_response(),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("worker stopped: {why}"),
        )
            .into_response(),
    }
}
