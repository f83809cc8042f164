//! The seed's curl example and its neighbours, through the assembled host (runtime, worker,
//! REST API) against the real Temporal dev server.

use crate::support;

use serde_json::{json, Value};
use support::{assert_errors, get_json, start, wait_closed, Session};

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_curl_example_creates_updates_and_deletes_a_user() {
    let session = Session::start().await;
    let (http, base) = (session.http.clone(), session.base.clone());

    let (id, run_id) = start(&http, &base, json!({"user_id": "user-123", "email": "test@example.com", "name": "Test User", "action": "create"})).await;
    assert_eq!(id, "user-user-123-create");
    let done = wait_closed(&http, &base, &id, &run_id).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["result"]["user"]["email"], "test@example.com");
    let user: Value = get_json(&http, format!("{base}/api/v1/users/user-123")).await;
    assert_eq!(user["name"], "Test User");

    let (id, run_id) = start(&http, &base, json!({"user_id": "user-123", "email": "new@example.com", "name": "New", "action": "update"})).await;
    assert_eq!(
        wait_closed(&http, &base, &id, &run_id).await["status"],
        "COMPLETED"
    );
    let user: Value = get_json(&http, format!("{base}/api/v1/users/user-123")).await;
    assert_eq!(user["email"], "new@example.com");

    let (id, run_id) = start(
        &http,
        &base,
        json!({"user_id": "user-123", "action": "delete"}),
    )
    .await;
    assert_eq!(
        wait_closed(&http, &base, &id, &run_id).await["result"]["deleted"],
        true
    );
    let gone = http
        .get(format!("{base}/api/v1/users/user-123"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    let err: Value = gone.json().await.unwrap();
    assert_eq!(err["error"]["code"], "user_not_found");

    // The worker and the API share this process's Temporal connection: the starts were
    // eager (the start's answer carried the first workflow task).
    let metrics = support::get_text(&http, format!("{base}/metrics")).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("activity_workflow_starts_total{eager=\"true\"}")),
        "{metrics}"
    );

    // No webhook configured: the host recorded the three notifications.
    let notes: Value = get_json(&http, format!("{base}/api/v1/notifications")).await;
    let actions: Vec<&str> = notes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create", "update", "delete"]);

    // An invalid user fails the workflow with the reasons.
    let (id, run_id) = start(
        &http,
        &base,
        json!({"user_id": "bad", "email": "nope", "name": "X", "action": "create"}),
    )
    .await;
    let failed = wait_closed(&http, &base, &id, &run_id).await;
    assert_eq!(failed["status"], "FAILED");
    assert_eq!(failed["error"]["type"], "InvalidUser", "{failed}");
    assert_eq!(failed["error"]["non_retryable"], true);
    assert!(
        failed["error"]["details"][0]
            .as_str()
            .unwrap()
            .starts_with("email:"),
        "{failed}"
    );

    // The metrics tell which code ran, and how the API was used; every answer carries a
    // request id, the client's own when it sent one.
    let res = http
        .get(format!("{base}/metrics"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-me-42");
    let text = res.text().await.unwrap();
    let validate = get_json(&http, format!("{base}/api/v1/activities/ValidateUser")).await
        ["active_digest"]
        .as_str()
        .unwrap()
        .to_string();
    for expected in [
        format!(
            r#"activity_executions_total{{activity_type="ValidateUser",version="{validate}",outcome="completed"}}"#
        ),
        r#"activity_executions_total{activity_type="ValidateUser""#.to_string(),
        r#"activity_execution_duration_seconds_bucket{activity_type="CreateUser""#.to_string(),
        "activity_types_served".to_string(),
        r#"http_requests_total{method="POST",route="/api/v1/workflows/user",status="201"}"#
            .to_string(),
        r#"http_request_duration_seconds_bucket{method="GET",route="/api/v1/users/{user_id}""#
            .to_string(),
    ] {
        assert!(text.contains(&expected), "{expected} missing from\n{text}");
    }
    let made = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert!(!made.headers()["x-request-id"].is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_clear_errors_and_start_nothing() {
    let session = Session::start().await;
    let (http, base) = (session.http.clone(), session.base.clone());
    let url = format!("{base}/api/v1/workflows/user");
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (http.post(&url).json(&json!({"user_id": "u", "action": "explode"})), 400, "invalid_field"),
        (http.post(&url).json(&json!({"user_id": "u", "name": "N", "action": "create"})), 400, "missing_field"),
        (http.post(&url).json(&json!({"user_id": "", "email": "a@b.io", "name": "N", "action": "create"})), 400, "invalid_id"),
        (http.post(&url).json(&json!({"user_id": "u", "email": "a@b.io", "name": "N", "action": "create", "admin": true})), 400, "invalid_field"),
        (http.post(&url).json(&json!({"user_id": 5, "action": "delete"})), 400, "invalid_field"),
        (http.post(&url).header("content-type", "application/json").body("{not json"), 400, "malformed_json"),
        (http.post(&url).header("content-type", "text/plain").body("{}"), 415, "unsupported_media_type"),
        (http.get(format!("{base}/api/v1/workflows/user/does-not-exist")), 404, "workflow_not_found"),
        (http.get(format!("{base}/api/v1/users/{}", "x".repeat(300))), 400, "invalid_id"),
        (http.get(format!("{base}/api/v1/nothing-here")), 404, "no_route"),
    ];
    assert_errors(cases).await;
    // Nothing reached Temporal.
    let listed = session
        .server
        .cli(&["workflow", "list", "-o", "json"])
        .unwrap();
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(!text.contains("UserWorkflow"), "{text}");
}
