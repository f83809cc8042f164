//! What every request goes through: a request id (taken from `x-request-id` or made, and
//! answered in the same header), a tracing span carrying it, request metrics, and
//! `GET /metrics`.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;

use crate::ApiState;

/// API requests, by `method`, `route` (the router's pattern) and `status`.
pub const REQUESTS: &str = "http_requests_total";
/// API request latency, by `method` and `route`.
pub const REQUEST_SECONDS: &str = "http_request_duration_seconds";
/// Workflows started (or found running) through the API, by `eager`: whether the start's
/// answer carried the first workflow task for this process's worker.
pub const WORKFLOW_STARTS: &str = "activity_workflow_starts_total";
/// Every metric this crate records.
pub const ALL: &[&str] = &[REQUESTS, REQUEST_SECONDS, WORKFLOW_STARTS];

/// Header carrying the request id.
pub const REQUEST_ID: &str = "x-request-id";

/// Wraps each request in a span with its id and records its metrics.
pub async fn observe(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = method_label(request.method()).to_string();
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let span = tracing::info_span!(
        "request",
        request_id = id.as_str(),
        method = method.as_str(),
        route = route.as_str(),
        caller = tracing::field::Empty
    );
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status();
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!(
                status = status.as_u16(),
                elapsed_ms = elapsed.as_secs_f64() * 1000.0,
                "request failed"
            );
        } else {
            tracing::debug!(
                status = status.as_u16(),
                elapsed_ms = elapsed.as_secs_f64() * 1000.0,
                "request served"
            );
        }
    });
    metrics::counter!(REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status.as_str().to_string())
        .increment(1);
    metrics::histogram!(REQUEST_SECONDS, "method" => method, "route" => route)
        .record(elapsed.as_secs_f64());
    response
}

/// The `method` label: the methods the API routes, else `other`, so that a client sending
/// made-up methods cannot grow the metrics without bound.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Installs the process-wide Prometheus recorder once and answers its handle: histograms
/// of seconds and bytes get buckets (not summaries), so they aggregate across hosts.
pub fn prometheus() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let seconds = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0, 60.0,
            ];
            let bytes: Vec<f64> = (0..10).map(|i| (64u64 << 10 << (2 * i)) as f64).collect();
            let installed = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_bytes".into()), &bytes))
                .and_then(|b| b.install_recorder());
            match installed {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed; /metrics answers nothing");
                    None
                }
            }
        })
        .clone()
}

/// `GET /metrics`: every metric of the process in Prometheus' text format.
#[utoipa::path(get, operation_id = "metrics", path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<Arc<ApiState>>) -> Response {
    let body = state
        .metrics
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}
