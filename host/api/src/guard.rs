//! Guards around the handlers: body limits, the request timeout, and readiness (who may
//! call is [`crate::auth`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use temporalio_client::grpc::WorkflowService;
use temporalio_client::tonic::IntoRequest;
use temporalio_common::protos::temporal::api::workflowservice::v1::GetSystemInfoRequest;

use crate::{ApiError, ApiState};

/// True when `presented` equals `expected`, in time that does not depend on where they
/// differ (both are hashed first, so not on their lengths either).
pub fn token_matches(presented: &str, expected: &str) -> bool {
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.ct_eq(&b).into()
}

/// At most this much of a refused request's body is read after the answer, each piece
/// dropped as it arrives ...
const LINGER_BYTES: usize = 16 << 20;
/// ... and for no longer than this.
const LINGER_TIME: Duration = Duration::from_secs(10);

/// Lets the answer to a refused request go out at once, and reads and drops what the client
/// is still sending, in the background, for at most [`LINGER_BYTES`] and [`LINGER_TIME`] (a
/// lingering close, as web servers do): closing with the body unread would reset the
/// connection, and a client still sending would see the reset instead of the answer.
/// Nothing of the body is kept: a refused request costs the host no memory, and a client
/// that sends more than that, or for longer, has its connection closed.
pub fn discard(body: axum::body::Body) {
    use http_body_util::BodyExt;
    let mut body = body;
    tokio::spawn(async move {
        let mut read = 0usize;
        let _ = tokio::time::timeout(LINGER_TIME, async {
            while read <= LINGER_BYTES {
                match body.frame().await {
                    Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len()),
                    _ => break,
                }
            }
        })
        .await;
    });
}

/// Refuses a body whose declared length is over the route's limit (a deploy's or a
/// verify's `registry.max_component_bytes`, else `api.max_json_body_bytes`) with `413`, before any
/// handler runs.
pub async fn body_limit(
    State(state): State<Arc<ApiState>>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str());
    let deploy = matches!(
        (request.method().as_str(), route),
        ("PUT", Some("/api/v1/activities/{name}"))
            | ("POST", Some("/api/v1/activities/{name}/verify"))
    );
    let (limit, code) = if deploy {
        (state.registry.max_component_bytes(), "component_too_large")
    } else {
        (state.settings.max_json_body_bytes, "body_too_large")
    };
    match declared {
        Some(n) if n > limit as u64 => {
            discard(request.into_body());
            ApiError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code,
                message: format!("the body is {n} bytes, over the limit of {limit}"),
            }
            .into_response()
        }
        _ => next.run(request).await,
    }
}

/// Answers `503 request_timeout` when a request runs past `api.request_timeout_ms`.
pub async fn timeout(State(state): State<Arc<ApiState>>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(state.settings.request_timeout(), next.run(request)).await {
        Ok(res) => res,
        Err(_) => ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "request_timeout",
            message: format!(
                "the request took longer than {} ms",
                state.settings.request_timeout_ms
            ),
        }
        .into_response(),
    }
}

/// What `/readyz` reports besides Temporal: set by the roles as they come up.
#[derive(Debug, Default)]
pub struct Readiness {
    /// Every active version was loaded at start.
    pub registry_loaded: AtomicBool,
    /// This process runs a worker.
    pub worker_expected: AtomicBool,
    /// The worker is polling its task queue.
    pub worker_polling: AtomicBool,
    /// Why the worker stopped for good (an error, not a shutdown): `/healthz` answers 503.
    pub worker_failed: std::sync::Mutex<Option<String>>,
    /// The process is shutting down: `/readyz` answers 503 while requests are still served,
    /// so a load balancer stops sending new ones before the listener closes.
    pub draining: AtomicBool,
}

/// How long `/readyz` waits for Temporal.
const TEMPORAL_CHECK: Duration = Duration::from_secs(2);

/// `GET /readyz`: `200` when Temporal answers, the registry is loaded and (in a process
/// with a worker) the worker polls, and the process is not shutting down; otherwise `503`
/// naming what is not ready.
#[utoipa::path(get, operation_id = "readyz", path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Temporal answers, the registry is loaded, the worker (if any) polls", body = crate::views::ReadinessView),
        (status = 503, description = "Not ready: the body says what is not", body = crate::views::ReadinessView)))]
pub async fn readyz(State(state): State<Arc<ApiState>>) -> Response {
    let temporal = match state.client.get() {
        None => "unavailable: not connected yet".to_string(),
        Some(mut client) => {
            let answer = tokio::time::timeout(
                TEMPORAL_CHECK,
                WorkflowService::get_system_info(
                    &mut client,
                    GetSystemInfoRequest::default().into_request(),
                ),
            )
            .await;
            match answer {
                Ok(Ok(_)) => "ok".to_string(),
                Ok(Err(e)) => format!("unavailable: {}", e.message()),
                Err(_) => "unavailable: no answer in 2 s".to_string(),
            }
        }
    };
    let r = &state.readiness;
    let registry = if r.registry_loaded.load(Ordering::Relaxed) {
        "loaded"
    } else {
        "loading"
    };
    let worker = match (
        r.worker_expected.load(Ordering::Relaxed),
        r.worker_polling.load(Ordering::Relaxed),
    ) {
        (false, _) => "not in this process",
        (true, true) => "polling",
        (true, false) => "not polling",
    };
    let draining = r.draining.load(Ordering::Relaxed);
    let ready = temporal == "ok" && registry == "loaded" && worker != "not polling" && !draining;
    let server = state.client.server().cloned();
    let limitations = server
        .iter()
        .filter_map(|s| s.standalone_activities_missing())
        .map(|why| format!("{why}; POST /api/v1/activities/{{name}}/invoke answers 501"))
        .collect();
    let body = crate::views::ReadinessView {
        ready,
        temporal,
        registry: registry.into(),
        worker: worker.into(),
        draining,
        server,
        limitations,
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(token_matches("s3cret-token-0123", "s3cret-token-0123"));
        assert!(!token_matches("s3cret-token-0124", "s3cret-token-0123"));
        assert!(!token_matches("", "s3cret-token-0123"));
        assert!(!token_matches(
            "s3cret-token-0123-longer",
            "s3cret-token-0123"
        ));
    }
}
