//! The API's contract: its OpenAPI document is valid and lists exactly the routes the router
//! serves, and a table of bad requests over every route gets 4xx answers that name the
//! problem, with nothing started in Temporal and nothing stored.

use crate::support;

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::json;
use support::{assert_errors, get_json, Session};

/// Every route the API serves: method and path pattern.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/activities"),
    ("put", "/api/v1/activities/{name}"),
    ("get", "/api/v1/activities/{name}"),
    ("delete", "/api/v1/activities/{name}"),
    ("post", "/api/v1/activities/{name}/rollback"),
    ("post", "/api/v1/activities/{name}/ramp"),
    ("post", "/api/v1/activities/{name}/promote"),
    ("post", "/api/v1/activities/{name}/abort"),
    ("post", "/api/v1/activities/{name}/verify"),
    ("get", "/api/v1/activities/{name}/schema"),
    ("get", "/api/v1/activities/{name}/egress"),
    ("post", "/api/v1/keys"),
    ("get", "/api/v1/keys"),
    ("delete", "/api/v1/keys/{id}"),
    ("get", "/api/v1/secrets"),
    ("put", "/api/v1/secrets/{name}"),
    ("delete", "/api/v1/secrets/{name}"),
    ("get", "/api/v1/codegen/{lang}"),
    ("post", "/api/v1/activities/{name}/invoke"),
    ("get", "/api/v1/activities/{name}/executions/{activity_id}"),
    ("post", "/api/v1/workflows/user"),
    ("get", "/api/v1/workflows/user"),
    ("get", "/api/v1/workflows/user/{workflow_id}"),
    ("post", "/api/v1/workflows/user/{workflow_id}/cancel"),
    ("get", "/api/v1/users/{user_id}"),
    ("get", "/api/v1/notifications"),
    ("get", "/api/v1/usage"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/docs"),
    ("get", "/docs/{file}"),
];

fn validator() -> PathBuf {
    support::validator("openapi-spec-validator")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_is_valid_and_lists_every_route() {
    let session = Session::start().await;
    let (http, base) = (session.http.clone(), session.base.clone());
    let doc = get_json(&http, format!("{base}/api/v1/openapi.json")).await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = std::process::Command::new(validator())
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );

    let listed: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "put", "post", "delete", "patch"].contains(&m.as_str()))
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    // The routes, and one typed invoke operation per deployed activity (the reference ones).
    let deployed = [
        "ValidateUser",
        "CreateUser",
        "UpdateUser",
        "DeleteUser",
        "SendNotification",
    ];
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .chain(
            deployed
                .iter()
                .map(|n| ("post".to_string(), format!("/api/v1/activities/{n}/invoke"))),
        )
        .collect();
    assert_eq!(listed, expected);
    let create = &doc["paths"]["/api/v1/activities/CreateUser/invoke"]["post"];
    let user = &create["requestBody"]["content"]["application/json"]["schema"]["oneOf"][0];
    assert_eq!(
        user["prefixItems"][0]["required"],
        json!(["user_id", "email", "name"]),
        "{create}"
    );

    // Every documented operation is served: no `no_route`, no 405.
    for (method, path) in &listed {
        let concrete = path
            .replace("{name}", "ValidateUser")
            .replace("{activity_id}", "no-such-execution")
            .replace("{workflow_id}", "no-such-workflow")
            .replace("{user_id}", "no-such-user");
        let url = format!("{base}{concrete}");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        // A body that no route accepts keeps deploys and starts from changing anything.
        let res = http
            .request(method.clone(), &url)
            .header("content-type", "text/plain")
            .body("x")
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        assert_ne!(status, 405, "{method} {url}");
        assert!(!text.contains("no_route"), "{method} {url}: {text}");
    }
    // Routes are marked with the role they need.
    let deploy = &doc["paths"]["/api/v1/activities/{name}"]["put"];
    assert_eq!(deploy["security"][0]["api_key"], json!([]));
    assert_eq!(deploy["x-required-role"], "deployer");
    let page = http.get(format!("{base}/docs")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("activity-host"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_on_every_route_is_a_clear_4xx_and_changes_nothing() {
    let session = Session::start().await;
    let (http, base) = (session.http.clone(), session.base.clone());
    let before = get_json(&http, format!("{base}/api/v1/activities")).await;
    let wf = format!("{base}/api/v1/workflows/user");
    let act = |rest: &str| format!("{base}/api/v1/activities/{rest}");
    let long = "x".repeat(256);
    let user = json!({"user_id": "u1", "email": "u1@example.com", "name": "U"});
    let wasm = test_components::read(test_components::VALIDATE_USER);
    let put = |name: &str| {
        http.put(act(name))
            .header("content-type", "application/wasm")
    };
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        // POST /api/v1/workflows/user
        (
            http.post(&wf)
                .json(&json!({"user_id": "u", "action": "explode"})),
            400,
            "invalid_field",
        ),
        (
            http.post(&wf)
                .json(&json!({"user_id": "u", "email": "e@x.io", "name": "N"})),
            400,
            "invalid_field",
        ),
        (
            http.post(&wf)
                .json(&json!({"email": "e@x.io", "name": "N", "action": "create"})),
            400,
            "invalid_field",
        ),
        (
            http.post(&wf)
                .json(&json!({"user_id": "u", "name": "N", "action": "create"})),
            400,
            "missing_field",
        ),
        (
            http.post(&wf).json(
                &json!({"user_id": "u", "email": "e@x.io", "name": "  ", "action": "update"}),
            ),
            400,
            "missing_field",
        ),
        (
            http.post(&wf)
                .json(&json!({"user_id": "", "action": "delete"})),
            400,
            "invalid_id",
        ),
        (
            http.post(&wf)
                .json(&json!({"user_id": long, "action": "delete"})),
            400,
            "invalid_id",
        ),
        (
            http.post(&wf)
                .json(&json!({"user_id": "a/b", "action": "delete"})),
            400,
            "invalid_id",
        ),
        (
            http.post(&wf)
                .json(&json!({"user_id": "a b", "action": "delete"})),
            400,
            "invalid_id",
        ),
        (
            http.post(&wf)
                .json(&json!({"user_id": 7, "action": "delete"})),
            400,
            "invalid_field",
        ),
        (
            http.post(&wf)
                .json(&json!({"user_id": "u", "action": "delete", "extra": 1})),
            400,
            "invalid_field",
        ),
        (
            http.post(&wf).json(&json!(["u", "delete"])),
            400,
            "invalid_field",
        ),
        (
            http.post(&wf)
                .header("content-type", "application/json")
                .body("{\"user_id\":"),
            400,
            "malformed_json",
        ),
        (
            http.post(&wf)
                .header("content-type", "application/json")
                .body(""),
            400,
            "malformed_json",
        ),
        (
            http.post(&wf)
                .header("content-type", "text/plain")
                .body("{}"),
            415,
            "unsupported_media_type",
        ),
        (http.post(&wf).body("{}"), 415, "unsupported_media_type"),
        (
            http.post(&wf)
                .header("content-type", "application/json")
                .body(format!("{{\"user_id\":\"{}\"}}", "x".repeat(2 << 20))),
            413,
            "body_too_large",
        ),
        (
            http.post(&wf)
                .header("idempotency-key", "has space")
                .json(&json!({"user_id": "u", "action": "delete"})),
            400,
            "invalid_id",
        ),
        // GET /api/v1/workflows/user (list)
        (
            http.get(format!("{wf}?status=sleeping")),
            400,
            "invalid_status",
        ),
        (
            http.get(format!("{wf}?page_size=0")),
            400,
            "invalid_page_size",
        ),
        (
            http.get(format!("{wf}?page_size=1000")),
            400,
            "invalid_page_size",
        ),
        (
            http.get(format!("{wf}?page_token=not-hex")),
            400,
            "invalid_page_token",
        ),
        (http.get(format!("{wf}?user_id=it's")), 400, "invalid_id"),
        (http.get(format!("{wf}?colour=red")), 400, "invalid_query"),
        // GET /api/v1/workflows/user/{id} and cancel
        (
            http.get(format!("{wf}/does-not-exist")),
            404,
            "workflow_not_found",
        ),
        (http.get(format!("{wf}/{long}")), 400, "invalid_id"),
        (
            http.get(format!("{wf}/x?run_id=not-a-uuid")),
            400,
            "invalid_run_id",
        ),
        (http.get(format!("{wf}/x?verbose=1")), 400, "invalid_query"),
        (
            http.post(format!("{wf}/does-not-exist/cancel")),
            404,
            "workflow_not_found",
        ),
        (http.post(format!("{wf}/{long}/cancel")), 400, "invalid_id"),
        (http.delete(&wf), 405, "method_not_allowed"),
        // Users and notifications
        (
            http.get(format!("{base}/api/v1/users/nobody")),
            404,
            "user_not_found",
        ),
        (
            http.get(format!("{base}/api/v1/users/{long}")),
            400,
            "invalid_id",
        ),
        (
            http.post(format!("{base}/api/v1/notifications")),
            405,
            "method_not_allowed",
        ),
        // Activities: deploy, show, rollback, remove
        (put("Fresh").body(Vec::<u8>::new()), 400, "empty_body"),
        (
            put("Fresh").body(b"not a component".to_vec()),
            422,
            "component_refused",
        ),
        (
            put("Fresh").body(b"\0asm\x01\0\0\0".to_vec()),
            422,
            "component_refused",
        ),
        (
            http.put(act("Fresh"))
                .header("content-type", "text/plain")
                .body(wasm.clone()),
            415,
            "unsupported_media_type",
        ),
        (put("Bad Name").body(wasm.clone()), 400, "invalid_name"),
        (
            put(&"N".repeat(256)).body(wasm.clone()),
            400,
            "invalid_name",
        ),
        (
            put("Fresh?max_memory_bytes=lots").body(wasm.clone()),
            400,
            "invalid_parameter",
        ),
        (
            put("Fresh?color=blue").body(wasm.clone()),
            400,
            "invalid_parameter",
        ),
        (
            put("Fresh?config=novalue").body(wasm.clone()),
            400,
            "invalid_parameter",
        ),
        (
            put("CreateUser").body(test_components::read(test_components::CREATE_USER)),
            422,
            "component_refused",
        ),
        (http.get(act("NotDeployed")), 404, "activity_not_found"),
        (http.get(act("Bad%20Name")), 400, "invalid_name"),
        (
            http.post(act("ValidateUser/rollback")),
            409,
            "no_earlier_version",
        ),
        (
            http.post(act("ValidateUser/rollback"))
                .json(&json!({"digest": "sha256:00"})),
            404,
            "version_not_found",
        ),
        (
            http.post(act("ValidateUser/rollback"))
                .json(&json!({"digest": 5})),
            400,
            "invalid_field",
        ),
        (
            http.post(act("NotDeployed/rollback")),
            404,
            "activity_not_found",
        ),
        (http.delete(act("NotDeployed")), 404, "activity_not_found"),
        // Invoke and executions
        (
            http.post(act("NotDeployed/invoke")).json(&json!([user])),
            404,
            "activity_not_found",
        ),
        (
            http.post(act("ValidateUser/invoke")).json(&json!([])),
            400,
            "invalid_arguments",
        ),
        (
            http.post(act("ValidateUser/invoke"))
                .json(&json!([{"user_id": "u"}])),
            400,
            "invalid_arguments",
        ),
        (
            http.post(act("ValidateUser/invoke"))
                .json(&json!({"args": [user], "maximum_attempts": -1})),
            400,
            "invalid_field",
        ),
        (
            http.post(act("ValidateUser/invoke?wait=maybe"))
                .json(&json!([user])),
            400,
            "invalid_query",
        ),
        (
            http.post(act("ValidateUser/invoke"))
                .header("content-type", "application/json")
                .body("[{"),
            400,
            "malformed_json",
        ),
        (
            http.post(act("ValidateUser/invoke"))
                .json(&json!({"args": [user], "activity_id": "a/b"})),
            400,
            "invalid_id",
        ),
        (
            http.get(act("ValidateUser/executions/never-ran")),
            404,
            "execution_not_found",
        ),
        (
            http.get(act(&format!("ValidateUser/executions/{long}"))),
            400,
            "invalid_id",
        ),
        // Anything else
        (
            http.get(format!("{base}/api/v2/workflows")),
            404,
            "no_route",
        ),
    ];
    assert!(cases.len() >= 40, "{} cases", cases.len());
    assert_errors(cases).await;

    // Nothing started in Temporal, nothing deployed or removed, no user stored.
    let workflows = session
        .server
        .cli(&["workflow", "list", "-o", "json"])
        .unwrap();
    let text = String::from_utf8_lossy(&workflows.stdout);
    assert!(!text.contains("UserWorkflow"), "{text}");
    let activities = session
        .server
        .cli(&["activity", "list", "-o", "json"])
        .unwrap();
    let text = String::from_utf8_lossy(&activities.stdout);
    assert!(!text.contains("ValidateUser"), "{text}");
    assert_eq!(
        get_json(&http, format!("{base}/api/v1/activities")).await,
        before
    );
    let users = http
        .get(format!("{base}/api/v1/users/u1"))
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 404);
}
