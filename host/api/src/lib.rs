//! The REST API: start `UserWorkflow`, follow it, read users and recorded notifications.
//!
//! Handlers validate everything a client sends before anything reaches Temporal, and answer
//! errors as `{"error":{"code","message"}}`.

pub mod access;
pub mod activities;
pub mod auth;
mod codegen;
mod error;
pub mod guard;
mod invoke;
mod json;
pub mod listener;
pub mod observe;
pub mod openapi;
mod settings;
mod start;
mod usage;
mod users;
pub mod verify;
pub mod views;
mod workflows;

use std::sync::Arc;

use activity_registry::Registry;
use activity_runtime::{ActivityLimits, KeyValueBackend};
use activity_worker::server::ServerFacts;
use axum::extract::DefaultBodyLimit;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use temporalio_client::Client;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::ApiError;
pub use guard::Readiness;
pub use openapi::ErrorBody;
pub use settings::{ApiSettings, InvokeSettings, QuotaSettings};
pub use usage::UsageReport;

/// Key-value store of users.
pub const USERS_STORE: &str = "users";
/// Key-value store of notifications recorded by the host.
pub const NOTIFICATIONS_STORE: &str = "notifications";

/// The Temporal client, once connected. The API serves before Temporal answers (routes
/// that need it answer `503` meanwhile); a connected client reconnects by itself.
#[derive(Clone, Default)]
pub struct ClientSlot {
    client: Arc<std::sync::OnceLock<Client>>,
    server: Arc<std::sync::OnceLock<ServerFacts>>,
}

impl ClientSlot {
    /// A slot already holding `client`.
    pub fn connected(client: Client) -> Self {
        let slot = Self::default();
        slot.set(client);
        slot
    }

    /// Fills the slot (once).
    pub fn set(&self, client: Client) {
        let _ = self.client.set(client);
    }

    /// The client, if connected.
    pub fn get(&self) -> Option<Client> {
        self.client.get().cloned()
    }

    /// Records what the server is and can do (once).
    pub fn set_server(&self, facts: ServerFacts) {
        let _ = self.server.set(facts);
    }

    /// What the server is and can do, once read.
    pub fn server(&self) -> Option<&ServerFacts> {
        self.server.get()
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// Temporal client.
    pub client: ClientSlot,
    /// The `api` section of the configuration.
    pub settings: ApiSettings,
    /// Temporal's namespace and the task queue workflows and invokes are started on.
    pub temporal: activity_worker::TemporalSettings,
    /// The key-value stores (users, notifications).
    pub store: Arc<dyn KeyValueBackend>,
    /// The module registry.
    pub registry: Arc<Registry>,
    /// Pulls OCI artifacts for deploys by reference, with the host's registry credentials.
    pub oci: Arc<activity_oci::OciClient>,
    /// Limits a deployment gets for what it does not set.
    pub default_limits: ActivityLimits,
    /// The process's metrics, rendered by `GET /metrics`.
    pub metrics: Option<PrometheusHandle>,
    /// What `/readyz` reports.
    pub readiness: Arc<Readiness>,
    /// API keys, read through a short-lived cache (`None`: only the admin token).
    pub keys: Option<Arc<auth::KeyCache>>,
    /// The rate limits' buckets.
    pub rates: Arc<auth::RateLimits>,
    /// The key secrets are sealed with, when the host has one.
    pub secrets_key: Option<Arc<activity_registry::access::SecretsKey>>,
}

impl ApiState {
    /// The Temporal client, or `503` while the API has not reached Temporal yet.
    pub fn client(&self) -> Result<Client, ApiError> {
        self.client.get().ok_or_else(|| {
            ApiError::temporal_unavailable("not connected to Temporal yet; retry shortly")
        })
    }
}

/// The router with every route, and the OpenAPI document describing exactly those routes
/// (both come from the same registrations).
pub fn router_and_openapi(state: ApiState) -> (Router, utoipa::openapi::OpenApi) {
    let max_component = state.registry.max_component_bytes();
    let max_json = state.settings.max_json_body_bytes;
    let state = Arc::new(state);
    let (schemas, paths, deploy_routes) =
        routes!(activities::deploy, activities::show, activities::remove);
    let (verify_schemas, verify_paths, verify_route) = routes!(verify::verify);
    let (router, doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(activities::list))
        .routes((
            verify_schemas,
            verify_paths,
            verify_route.layer(DefaultBodyLimit::max(max_component)),
        ))
        .routes((
            schemas,
            paths,
            deploy_routes.layer(DefaultBodyLimit::max(max_component)),
        ))
        .routes(routes!(activities::rollback))
        .routes(routes!(activities::ramp))
        .routes(routes!(activities::promote))
        .routes(routes!(activities::abort))
        .routes(routes!(activities::schema))
        .routes(routes!(codegen::codegen))
        .routes(routes!(invoke::invoke))
        .routes(routes!(invoke::execution))
        .routes(routes!(start::start, workflows::list))
        .routes(routes!(workflows::show))
        .routes(routes!(workflows::cancel))
        .routes(routes!(access::create_key, access::list_keys))
        .routes(routes!(access::revoke_key))
        .routes(routes!(access::egress))
        .routes(routes!(access::list_secrets))
        .routes(routes!(access::set_secret, access::remove_secret))
        .routes(routes!(users::show))
        .routes(routes!(users::notifications))
        .routes(routes!(usage::usage))
        .routes(routes!(openapi::healthz))
        .routes(routes!(guard::readyz))
        .routes(routes!(observe::metrics))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(openapi::docs))
        .routes(routes!(openapi::docs_asset))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authorize,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::body_limit,
        ))
        .split_for_parts();
    openapi::publish(&doc);
    let router = router
        .fallback(|| async { ApiError::not_found("no_route", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError {
                status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
                code: "method_not_allowed",
                message: "this route does not take that method; see /api/v1/openapi.json".into(),
            }
        })
        .layer(DefaultBodyLimit::max(max_json))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::timeout,
        ))
        .layer(axum::middleware::from_fn(observe::observe))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state);
    (router, doc)
}

/// The router with every route.
pub fn router(state: ApiState) -> Router {
    router_and_openapi(state).0
}

/// What a worker-only process serves for its orchestrator: `/healthz`, `/readyz`, `/metrics`.
pub fn ops_router(state: ApiState) -> Router {
    let state = Arc::new(state);
    let (router, _) = OpenApiRouter::new()
        .routes(routes!(openapi::healthz))
        .routes(routes!(guard::readyz))
        .routes(routes!(observe::metrics))
        .split_for_parts();
    router
        .fallback(|| async {
            ApiError::not_found(
                "no_route",
                "a worker serves only /healthz, /readyz and /metrics",
            )
        })
        .layer(axum::middleware::from_fn(observe::observe))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}
