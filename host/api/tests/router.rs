//! The router driven in-process (`tower::ServiceExt::oneshot`) over a real registry (SQLite in
//! a temporary directory), a real runtime and the real reference components; no Temporal is
//! started, so routes that need it must answer `503` and everything checked before it must
//! answer without it.

use std::sync::Arc;

use activity_api::{ApiSettings, ApiState, ClientSlot};
use activity_registry::Registry;
use activity_runtime::{Runtime, RuntimeConfig};
use activity_sqlite::{SqliteKeyValue, SqliteRegistryStore};
use activity_worker::TemporalSettings;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const TOKEN: &str = "router-test-admin-token";

/// A registry over the SQLite store in `dir`; `executes: false` is the `server` role's.
fn registry(dir: &std::path::Path, executes: bool) -> (Arc<Registry>, Arc<Runtime>) {
    let runtime = Arc::new(Runtime::new(&RuntimeConfig::default()).unwrap());
    let store =
        SqliteRegistryStore::open(&dir.join("registry.sqlite"), &dir.join("modules")).unwrap();
    let mut registry = Registry::new(Arc::new(store), runtime.clone(), 50 << 20);
    if !executes {
        registry = registry.without_execution();
    }
    (Arc::new(registry), runtime)
}

fn router(registry: Arc<Registry>) -> axum::Router {
    activity_api::router(ApiState {
        client: ClientSlot::default(),
        settings: ApiSettings {
            admin_token: Some(TOKEN.into()),
            ..ApiSettings::default()
        },
        temporal: TemporalSettings::default(),
        store: Arc::new(SqliteKeyValue::in_memory().unwrap()),
        registry,
        oci: Arc::new(activity_oci::OciClient::new(Default::default())),
        default_limits: Default::default(),
        metrics: None,
        readiness: Arc::default(),
    })
}

async fn send(router: &axum::Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body)
}

fn deploy_request(token: Option<&str>) -> Request<Body> {
    let mut request = Request::put("/api/v1/activities/ValidateUser")
        .header(header::CONTENT_TYPE, "application/wasm");
    if let Some(t) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let bytes = test_components::read(test_components::VALIDATE_USER);
    request.body(Body::from(bytes)).unwrap()
}

fn invoke_request(args: Value) -> Request<Body> {
    Request::post("/api/v1/activities/ValidateUser/invoke")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(args.to_string()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_list_and_invoke_checks_answer_without_temporal() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, _) = registry(dir.path(), true);
    let app = router(registry);

    let (status, body) = send(&app, deploy_request(None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = send(&app, deploy_request(Some(TOKEN))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let digest = body["version"]["digest"].as_str().unwrap().to_string();

    let list = Request::get("/api/v1/activities")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(&app, list).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0]["name"], "ValidateUser", "{body}");
    assert_eq!(body[0]["active_digest"], digest.as_str());

    // A wrong argument is refused with its path before Temporal is needed.
    let (status, body) = send(&app, invoke_request(json!([{"user_id": 5}]))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid_arguments");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("argument 0 (user)"), "{message}");

    // Right arguments, but no Temporal: 503, not a hang.
    let user = json!({"user_id": "u1", "email": "a@example.com", "name": "A"});
    let (status, body) = send(&app, invoke_request(json!([user]))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "temporal_unavailable");

    // The schema of what the signature accepts, from the same WIT types.
    let schema = Request::get("/api/v1/activities/ValidateUser/schema")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(schema).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/schema+json"
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let schema: Value = serde_json::from_slice(&bytes).unwrap();
    let user = &schema["properties"]["parameters"]["prefixItems"][0];
    assert_eq!(user["title"], "user", "{schema}");
    assert_eq!(user["properties"]["email"]["type"], "string", "{schema}");
    assert_eq!(
        schema["properties"]["parameters"]["maxItems"], 1,
        "{schema}"
    );

    let (status, body) = send(
        &app,
        Request::post("/api/v1/activities/Nope/invoke")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("[]"))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_without_execution_checks_arguments_without_compiling() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (registry, _) = registry(dir.path(), true);
        let app = router(registry);
        let (status, body) = send(&app, deploy_request(Some(TOKEN))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // The server role over the same store: it loads the signature, never the component.
    let (registry, runtime) = registry(dir.path(), false);
    assert!(registry.load_all().await.unwrap().is_empty());
    let app = router(registry.clone());
    let (status, body) = send(&app, invoke_request(json!([{"email": 1}]))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("argument 0 (user)"),
        "{body}"
    );
    let show = Request::get("/api/v1/activities/ValidateUser")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(&app, show).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["serving_digest"], body["active_digest"], "{body}");
    assert_eq!(
        runtime.compilations(),
        0,
        "the server role compiled a component"
    );
    assert!(
        activity_runtime::ActivityCatalog::get(registry.as_ref(), "ValidateUser").is_none(),
        "nothing to execute on a host without execution"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_lists_every_routed_path() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, _) = registry(dir.path(), true);
    let app = router(registry);
    let doc = Request::get("/api/v1/openapi.json")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(&app, doc).await;
    assert_eq!(status, StatusCode::OK);
    let paths = body["paths"].as_object().unwrap();
    for (method, path) in activity_api::ADMIN_ROUTES {
        let operation = &paths[*path][method.to_lowercase()];
        assert!(operation.is_object(), "{method} {path} is not documented");
    }
    for path in [
        "/api/v1/workflows/user",
        "/api/v1/activities/{name}/invoke",
        "/healthz",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    assert!(!paths.contains_key("/api/v1/activities/ValidateUser/invoke"));

    // Once deployed, the activity has its own typed operation, from its WIT signature.
    let (status, body) = send(&app, deploy_request(Some(TOKEN))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let doc = Request::get("/api/v1/openapi.json")
        .body(Body::empty())
        .unwrap();
    let (_, body) = send(&app, doc).await;
    let operation = &body["paths"]["/api/v1/activities/ValidateUser/invoke"]["post"];
    assert_eq!(
        operation["operationId"], "invoke_ValidateUser",
        "{operation}"
    );
    let arguments = &operation["requestBody"]["content"]["application/json"]["schema"]["oneOf"][0];
    assert_eq!(arguments["prefixItems"][0]["title"], "user", "{operation}");
    let result = &operation["responses"]["200"]["content"]["application/json"]["schema"];
    assert!(result["properties"]["result"].is_object(), "{operation}");
}
