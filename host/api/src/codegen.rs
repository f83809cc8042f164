//! `GET /api/v1/codegen/{lang}`: typed client stubs for deployed activities.

use std::sync::Arc;

use activity_codegen::{Activity, CodegenError, Lang};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use crate::auth::Caller;
use crate::json::ApiPath;
use crate::{ApiError, ApiState, ErrorBody};

/// `GET /api/v1/codegen/{lang}?name=A&name=B&package=P`: the stub module (`python`,
/// `typescript`, `rust`, `go`, `java`) for the named activities this host holds, or for all
/// of them without `name`; Go and Java modules in `package` when given.
#[utoipa::path(get, operation_id = "codegen", path = "/api/v1/codegen/{lang}", tag = "activities",
    params(("lang" = String, Path, description = "python, typescript, rust, go or java"),
        ("name" = Option<Vec<String>>, Query, description = "Activity type (repeatable); default: every deployed one"),
        ("package" = Option<String>, Query, description = "Go: the package clause; Java: the package of class Activities (default for both: activities)")),
    responses(
        (status = 200, description = "The module's source", body = String, content_type = "text/plain"),
        (status = 400, description = "Unknown language, invalid name or parameter", body = ErrorBody),
        (status = 403, description = "A named type is outside the key's activity types", body = ErrorBody),
        (status = 404, description = "An activity type is not deployed", body = ErrorBody),
        (status = 422, description = "A type has no JSON mapping", body = ErrorBody)))]
pub async fn codegen(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(lang): ApiPath<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let lang: Lang = lang
        .parse()
        .map_err(|e: CodegenError| ApiError::bad_request("unknown_language", e.to_string()))?;
    let mut names = Vec::new();
    let mut package = None;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "name" => names.push(value.into_owned()),
            "package" if package.is_none() => package = Some(value.into_owned()),
            other => {
                return Err(ApiError::bad_request(
                    "invalid_parameter",
                    format!("unknown or repeated parameter {other:?}; expected name or package"),
                ))
            }
        }
    }
    // A key limited to some activity types gets stubs for those only.
    if let Some(name) = names.iter().find(|n| !caller.covers(n)) {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: format!("{} may not see activity type {name}", caller.who),
        });
    }
    let held = if names.is_empty() {
        let mut all = state.registry.signatures();
        all.retain(|(name, _)| caller.covers(name));
        all
    } else {
        names
            .iter()
            .map(|n| crate::activities::deployed_signature(&state, n).map(|s| (n.clone(), s)))
            .collect::<Result<_, _>>()?
    };
    let activities: Vec<Activity> = held
        .iter()
        .map(|(name, signature)| Activity { name, signature })
        .collect();
    let source = activity_codegen::generate_in(
        lang,
        &activities,
        &state.temporal.task_queue,
        package.as_deref(),
    )
    .map_err(|e| match e {
        CodegenError::Empty => {
            ApiError::not_found("activity_not_found", "no activities are deployed")
        }
        CodegenError::InvalidPackage(message) => {
            ApiError::bad_request("invalid_parameter", message)
        }
        other => ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "unsupported_type",
            message: other.to_string(),
        },
    })?;
    let mut response = source.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}
