//! The router driven in-process (`tower::ServiceExt::oneshot`) over a real registry (SQLite in
//! a temporary directory), a real runtime and the real reference components; no Temporal is
//! started, so routes that need it must answer `503` and everything checked before it must
//! answer without it.

use std::sync::Arc;

use activity_api::auth::{KeyCache, ROUTES, SCOPE_FILTERED};
use activity_api::{ApiSettings, ApiState, ClientSlot};
use activity_registry::access::{AccessStore, Need, Role};
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
    router_with(registry, None, ApiSettings::default())
}

/// The router with auth on (the admin token), keys in `keys` (an in-memory SQLite store when
/// `None`) and `settings` otherwise.
fn router_with(
    registry: Arc<Registry>,
    keys: Option<Arc<dyn AccessStore>>,
    settings: ApiSettings,
) -> axum::Router {
    let keys = keys.unwrap_or_else(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        Arc::new(SqliteRegistryStore::open(&dir.join("keys.sqlite"), &dir.join("modules")).unwrap())
    });
    activity_api::router(ApiState {
        client: ClientSlot::default(),
        settings: ApiSettings {
            admin_token: Some(TOKEN.into()),
            ..settings
        },
        keys: Some(Arc::new(KeyCache::new(keys))),
        rates: Arc::default(),
        secrets_key: None,
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
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
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
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
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
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
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
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
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
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
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
    // The route table and the document name the same routes, and every route that needs
    // a role says so in the document.
    let mut documented = Vec::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            documented.push((method.to_uppercase(), path.clone()));
            let need = activity_api::auth::need_of(&method.to_uppercase(), path);
            assert!(
                need.is_some(),
                "{method} {path} has no role in auth::ROUTES"
            );
            if need != Some(Need::Public) {
                assert!(
                    operation["x-required-role"].is_string(),
                    "{method} {path}: {operation}"
                );
                assert!(operation["responses"]["401"].is_object(), "{method} {path}");
                assert!(operation["responses"]["403"].is_object(), "{method} {path}");
            }
        }
    }
    for (method, path, _) in ROUTES {
        assert!(
            documented.contains(&(method.to_string(), path.to_string())),
            "{method} {path} is in auth::ROUTES but not served"
        );
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

/// A request to `route` (the table's pattern, with its parameters filled in) as `token`.
fn route_request(method: &str, route: &str, token: Option<&str>) -> Request<Body> {
    let path = route
        .replace("{name}", "ValidateUser")
        .replace("{id}", "key_0000000000000000")
        .replace("{workflow_id}", "user-u1-create")
        .replace("{user_id}", "u1")
        .replace("{file}", "swagger-ui.css")
        .replace("{lang}", "python")
        .replace("{activity_id}", "nothing-here");
    let mut request = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    request
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap()
}

async fn create_key(app: &axum::Router, body: Value) -> (String, String) {
    let request = Request::post("/api/v1/keys")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, body) = send(app, request).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body["key"].get("hash").is_none(), "{body}");
    (
        body["key"]["id"].as_str().unwrap().to_string(),
        body["token"].as_str().unwrap().to_string(),
    )
}

/// Every route of the table, for no caller and a key of every role: `401` without a token,
/// `403` when the role does not allow the route, anything else when it does. Generated from
/// the table the router enforces (and the test above ties the table to the served routes),
/// so a new route is covered the day it is added.
#[tokio::test(flavor = "multi_thread")]
async fn every_route_answers_each_role_as_the_table_says() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, _) = registry(dir.path(), true);
    let app = router(registry);
    let (status, body) = send(&app, deploy_request(Some(TOKEN))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut callers: Vec<(Option<Role>, Option<String>)> = vec![(None, None)];
    for role in Role::ALL {
        let (_, token) = create_key(&app, json!({"name": format!("{role:?}"), "role": role})).await;
        callers.push((Some(role), Some(token)));
    }
    let mut checked = 0;
    for (method, route, need) in ROUTES {
        for (role, token) in &callers {
            let (status, body) = send(&app, route_request(method, route, token.as_deref())).await;
            let who = role.map_or("no token".to_string(), |r| r.as_str().to_string());
            match (need, role) {
                (Need::Public, _) => assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{method} {route} as {who}: {status} {body}"
                ),
                (_, None) => assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {route} as {who}: {body}"
                ),
                (need, Some(role)) if role.allows(*need) => assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{method} {route} as {who}: {status} {body}"
                ),
                (_, Some(_)) => {
                    assert_eq!(
                        status,
                        StatusCode::FORBIDDEN,
                        "{method} {route} as {who}: {body}"
                    );
                    assert_eq!(body["error"]["code"], "forbidden", "{body}");
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, ROUTES.len() * 5);

    // Keys are listed without their tokens.
    let (status, body) = send(&app, route_request("GET", "/api/v1/keys", Some(TOKEN))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().unwrap().len(), 4, "{body}");
    for (_, token) in &callers {
        if let Some(token) = token {
            assert!(
                !body.to_string().contains(token),
                "a token is listed: {body}"
            );
        }
    }
}

/// `GET` of `path` with `token`: its status and body text.
async fn get_text(app: &axum::Router, path: &str, token: &str) -> (StatusCode, String) {
    let request = Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// A key limited to activity types reaches only what is about them, whatever its role: every
/// route of the table that names another type, or none (workflows, users, notifications,
/// keys, secrets), answers it `403`; the activity list and codegen answer with its types only.
#[tokio::test(flavor = "multi_thread")]
async fn a_key_limited_to_activity_types_reaches_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, _) = registry(dir.path(), true);
    let app = router(registry);
    let (status, body) = send(&app, deploy_request(Some(TOKEN))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let limited = |to: &str| json!({"name": to, "role": "admin", "activities": [to]});
    let (_, other) = create_key(&app, limited("Other")).await;
    let (_, own) = create_key(&app, limited("ValidateUser")).await;

    // What the lists show each key, before the loop below removes the type.
    let (status, body) = get_text(&app, "/api/v1/activities", &other).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "[]"));
    let (status, body) = get_text(&app, "/api/v1/activities", &own).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("\"ValidateUser\""), "{body}");
    // No type it may see is deployed: codegen says so as it does on an empty host.
    let (status, body) = get_text(&app, "/api/v1/codegen/python", &other).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(!body.contains("ValidateUser"), "{body}");
    let (status, body) = get_text(&app, "/api/v1/codegen/python", &own).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("ValidateUser"), "{body}");
    let named = "/api/v1/codegen/python?name=ValidateUser";
    let (status, body) = get_text(&app, named, &other).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let mut refused = 0;
    for (method, route, need) in ROUTES {
        if *need == Need::Public {
            continue;
        }
        let (status, body) = send(&app, route_request(method, route, Some(&other))).await;
        if SCOPE_FILTERED.contains(route) {
            assert!(
                status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                "{method} {route}: {status} {body}"
            );
        } else {
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {route}: {body}");
            assert_eq!(body["error"]["code"], "forbidden", "{body}");
            refused += 1;
        }
        if route.starts_with("/api/v1/activities/{name}") {
            let (status, body) = send(&app, route_request(method, route, Some(&own))).await;
            assert!(
                status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                "{method} {route} with its own type: {status} {body}"
            );
        }
    }
    assert!(refused > 20, "{refused} routes refused");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_key_is_refused_within_the_cache_time() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, _) = registry(dir.path(), true);
    let app = router(registry);
    let (id, token) = create_key(&app, json!({"name": "ci", "role": "reader"})).await;
    let list = || route_request("GET", "/api/v1/activities", Some(&token));
    assert_eq!(send(&app, list()).await.0, StatusCode::OK);
    let revoke = Request::delete(format!("/api/v1/keys/{id}"))
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, revoke).await.0, StatusCode::NO_CONTENT);
    // Every request sent once the cache time has passed since the revocation is refused;
    // a slower machine only sends them later, which cannot turn a refusal into a pass.
    let trusted_until = std::time::Instant::now() + activity_api::auth::KEY_CACHE;
    let deadline = trusted_until + std::time::Duration::from_secs(60);
    loop {
        let sent = std::time::Instant::now();
        let (status, body) = send(&app, list()).await;
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(body["error"]["code"], "invalid_token");
            break;
        }
        assert!(
            sent < trusted_until,
            "served {status} {:?} past the key cache time",
            sent - trusted_until
        );
        assert!(
            std::time::Instant::now() < deadline,
            "still served: {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (_, body) = send(&app, route_request("GET", "/api/v1/keys", Some(TOKEN))).await;
    assert!(body[0]["revoked_at_ms"].is_u64(), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn invokes_over_a_rate_limit_are_answered_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, _) = registry(dir.path(), true);
    let mut settings = ApiSettings::default();
    settings.quotas.per_activity_per_minute = Some(3);
    let app = router_with(registry, None, settings);
    let (status, body) = send(&app, deploy_request(Some(TOKEN))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, limited) = create_key(
        &app,
        json!({"name": "slow", "role": "invoker", "per_minute": 1}),
    )
    .await;
    let user = json!([{"user_id": "u1", "email": "a@example.com", "name": "A"}]);
    let invoke = |token: &str| {
        Request::post("/api/v1/activities/ValidateUser/invoke")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(user.to_string()))
            .unwrap()
    };
    // The key's own limit: one a minute.
    let first = app.clone().oneshot(invoke(&limited)).await.unwrap();
    assert_eq!(
        first.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "no Temporal here"
    );
    let second = app.clone().oneshot(invoke(&limited)).await.unwrap();
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = second.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((50..=60).contains(&wait), "Retry-After {wait}");
    // The activity type's limit: three a minute, whoever calls (one used above).
    for _ in 0..2 {
        assert_eq!(
            send(&app, invoke(TOKEN)).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    let (status, body) = send(&app, invoke(TOKEN)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployer_key_grants_only_what_its_scope_names() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, _) = registry(dir.path(), true);
    let app = router_with(registry, None, ApiSettings::default());
    let deploy = |token: &str, query: &str| {
        Request::put(format!("/api/v1/activities/CreateUser?{query}"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/wasm")
            .body(Body::from(test_components::read(
                test_components::CREATE_USER,
            )))
            .unwrap()
    };
    // Limited to CreateUser, naming no store: it may grant none, the users store included.
    let (_, scoped) = create_key(
        &app,
        json!({"name": "ci", "role": "deployer", "activities": ["CreateUser"]}),
    )
    .await;
    let (status, body) = send(&app, deploy(&scoped, "kv_store=users")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "outside_key_scope", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"users\""),
        "{body}"
    );
    let (status, body) = send(&app, deploy(&scoped, "kv_store=*")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // A key naming stores grants those only.
    let (_, orders) = create_key(
        &app,
        json!({"name": "orders-ci", "role": "deployer", "activities": ["CreateUser"],
               "key_value_stores": ["orders-*"]}),
    )
    .await;
    let (status, body) = send(&app, deploy(&orders, "kv_store=users")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = send(&app, deploy(&orders, "kv_store=orders-eu")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // A deployer of every activity type grants any store, as the admin token does.
    let (_, platform) = create_key(&app, json!({"name": "platform", "role": "deployer"})).await;
    let (status, body) = send(&app, deploy(&platform, "kv_store=users")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
