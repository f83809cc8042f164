//! A JSON body extractor whose rejections are API errors naming the problem.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use std::sync::Arc;

use crate::{ApiError, ApiState};

/// `Json<T>` with `{"error":{...}}` rejections.
pub struct ApiJson<T>(pub T);

impl<T> FromRequest<Arc<ApiState>> for ApiJson<T>
where
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<ApiState>) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(match rejection {
                JsonRejection::MissingJsonContentType(_) => ApiError {
                    status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    code: "unsupported_media_type",
                    message: "send the body as JSON with Content-Type: application/json".into(),
                },
                JsonRejection::JsonSyntaxError(e) => {
                    ApiError::bad_request("malformed_json", e.body_text())
                }
                JsonRejection::JsonDataError(e) => {
                    ApiError::bad_request("invalid_field", e.body_text())
                }
                JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError {
                        status: StatusCode::PAYLOAD_TOO_LARGE,
                        code: "body_too_large",
                        message: format!(
                            "the body is larger than {} bytes",
                            state.settings.max_json_body_bytes
                        ),
                    }
                }
                other => ApiError {
                    status: other.status(),
                    code: "invalid_body",
                    message: other.body_text(),
                },
            }),
        }
    }
}

/// `Query<T>` whose rejections are `400 invalid_query` naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<T> FromRequestParts<Arc<ApiState>> for ApiQuery<T>
where
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
    }
}

/// `Path<T>` whose rejections are `400 invalid_path`.
pub struct ApiPath<T>(pub T);

impl<T> FromRequestParts<Arc<ApiState>> for ApiPath<T>
where
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))
    }
}
