//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations and
//! types as the router is built, served at `/api/v1/openapi.json` and rendered at `/docs`.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
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

struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_default()
            .add_security_scheme(
                "admin_token",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

/// The document's fixed part; the router adds the paths.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "activity-host",
        description = "Serverless WebAssembly activity host for Temporal: start and follow `UserWorkflow`, deploy, roll back and invoke activity components. Errors are `{\"error\":{\"code\",\"message\"}}`."
    ),
    components(schemas(ErrorBody)),
    modifiers(&AdminToken),
    tags(
        (name = "workflows", description = "UserWorkflow: start, follow, cancel, list"),
        (name = "activities", description = "Deployed activity components (admin routes need the bearer token when one is configured)"),
        (name = "invoke", description = "Run a deployed activity once as a Temporal standalone activity"),
        (name = "users", description = "What the reference activities stored"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
pub struct ApiDoc;

/// The document as JSON and as a rendered page, set once per process.
static RENDERED: OnceLock<(String, String)> = OnceLock::new();

/// Keeps the document the router was built with.
pub fn publish(doc: &utoipa::openapi::OpenApi) {
    RENDERED.get_or_init(|| {
        let json = doc.to_json().unwrap_or_else(|_| "{}".into());
        let html = utoipa_scalar::Scalar::new(doc.clone()).to_html();
        (json, html)
    });
}

/// `GET /api/v1/openapi.json`.
#[utoipa::path(get, operation_id = "openapi", path = "/api/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "This OpenAPI document", content_type = "application/json")))]
pub async fn openapi_json() -> Response {
    let json = RENDERED.get().map(|r| r.0.clone()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], json).into_response()
}

/// `GET /docs`.
#[utoipa::path(get, operation_id = "docs", path = "/docs", tag = "operations",
    responses((status = 200, description = "The API reference, rendered from the OpenAPI document", content_type = "text/html")))]
pub async fn docs() -> Html<String> {
    Html(RENDERED.get().map(|r| r.1.clone()).unwrap_or_default())
}

/// `GET /healthz`.
#[utoipa::path(get, operation_id = "healthz", path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}
