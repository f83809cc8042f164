//! The REST API: start `UserWorkflow`, follow it, read users and recorded notifications.
//!
//! Handlers validate everything a client sends before anything reaches Temporal, and answer
//! errors as `{"error":{"code","message"}}`.

mod activities;
mod error;
mod json;
pub mod observe;
mod users;
mod workflows;

use std::sync::Arc;

use activity_registry::Registry;
use activity_runtime::{ActivityLimits, KeyValueBackend};
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use temporalio_client::Client;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

pub use error::ApiError;

/// Largest JSON body accepted, in bytes.
pub const MAX_JSON_BODY: usize = 1 << 20;
/// Key-value store of users.
pub const USERS_STORE: &str = "users";
/// Key-value store of notifications recorded by the host.
pub const NOTIFICATIONS_STORE: &str = "notifications";

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// Temporal client.
    pub client: Client,
    /// Namespace.
    pub namespace: String,
    /// Task queue `UserWorkflow` runs on.
    pub task_queue: String,
    /// The key-value stores (users, notifications).
    pub store: Arc<dyn KeyValueBackend>,
    /// The module registry.
    pub registry: Arc<Registry>,
    /// Limits a deployment gets for what it does not set.
    pub default_limits: ActivityLimits,
    /// The process's metrics, rendered by `GET /metrics`.
    pub metrics: Option<PrometheusHandle>,
}

/// The router with every route.
pub fn router(state: ApiState) -> Router {
    let max_component = state.registry.max_component_bytes();
    Router::new()
        .route("/api/v1/activities", get(activities::list))
        .route(
            "/api/v1/activities/{name}",
            put(activities::deploy)
                .layer(DefaultBodyLimit::max(max_component))
                .get(activities::show)
                .delete(activities::remove),
        )
        .route(
            "/api/v1/activities/{name}/rollback",
            post(activities::rollback),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(observe::metrics))
        .route("/api/v1/workflows/user", post(workflows::start))
        .route("/api/v1/workflows/user/{workflow_id}", get(workflows::show))
        .route("/api/v1/users/{user_id}", get(users::show))
        .route("/api/v1/notifications", get(users::notifications))
        .fallback(|| async { ApiError::not_found("no_route", "no such route") })
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(axum::middleware::from_fn(observe::observe))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(Arc::new(state))
}
