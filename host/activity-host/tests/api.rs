//! The REST API's routes beyond the seed's example, against the real dev server: cancel,
//! listing with paging, serverless invoke (and the same through `temporal activity
//! execute`), readiness, the admin token, and Temporal going away and coming back.

use crate::support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{assert_errors, get_json, start, start_host_at, try_start, wait_closed, Session};
use test_support::{eventually, DevServer};

#[tokio::test(flavor = "multi_thread")]
async fn cancel_and_list_through_the_api() {
    let server = tokio::task::spawn_blocking(DevServer::start)
        .await
        .unwrap()
        .unwrap();
    let queue = format!("api-{}", test_support::free_port());
    // An API with no worker on its queue: started workflows wait, so one can be cancelled
    // before its first step.
    let q = queue.clone();
    let api = start_host_at(
        &server.address,
        move |c| c.workflow.temporal.task_queue = q,
        false,
    );
    let http = support::http();
    let base = api.base.clone();
    let ready: Value = eventually(Duration::from_secs(60), || async {
        let res = http.get(format!("{base}/readyz")).send().await.ok()?;
        (res.status() == 200).then_some(res.json().await.ok()?)
    })
    .await
    .expect("ready without a worker in this process");
    assert_eq!(ready["worker"], "not in this process", "{ready}");

    let body =
        json!({"user_id": "c1", "email": "c1@example.com", "name": "C One", "action": "create"});
    let (id, run_id) = start(&http, &base, body.clone()).await;
    // The same request again finds the open run: 200, same ids.
    let again = http
        .post(format!("{base}/api/v1/workflows/user"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(
        (again["workflow_id"].as_str(), again["run_id"].as_str()),
        (Some(id.as_str()), Some(run_id.as_str()))
    );
    let shown = get_json(&http, format!("{base}/api/v1/workflows/user/{id}")).await;
    assert_eq!(shown["status"], "RUNNING", "{shown}");

    let cancel = |id: &str| {
        http.post(format!("{base}/api/v1/workflows/user/{id}/cancel"))
            .send()
    };
    let res = cancel(&id).await.unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(
        res.json::<Value>().await.unwrap()["run_id"],
        run_id.as_str()
    );

    // A worker comes up on the queue: the workflow sees the signal before its first step.
    let q = queue.clone();
    let _worker = start_host_at(
        &server.address,
        move |c| c.workflow.temporal.task_queue = q,
        true,
    );
    let done = wait_closed(&http, &base, &id, &run_id).await;
    assert_eq!(done["status"], "CANCELED", "{done}");
    let res = cancel(&id).await.unwrap();
    assert_eq!(res.status(), 409);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["code"],
        "workflow_not_running"
    );
    assert_eq!(cancel("user-nobody-create").await.unwrap().status(), 404);

    // Two more runs, then list: by user, by status, and page by page.
    for user in ["c2", "c3"] {
        let (id, run) = start(
            &http,
            &base,
            json!({"user_id": user, "email": "x@example.com", "name": "X", "action": "create"}),
        )
        .await;
        assert_eq!(
            wait_closed(&http, &base, &id, &run).await["status"],
            "COMPLETED"
        );
    }
    let list = |query: String| get_json(&http, format!("{base}/api/v1/workflows/user?{query}"));
    let all = eventually(Duration::from_secs(60), || async {
        let v = list("page_size=100".into()).await;
        (v["workflows"].as_array()?.len() == 3).then_some(v)
    })
    .await
    .expect("visibility lists three runs");
    assert!(all["next_page_token"].is_null(), "{all}");
    let c1 = list("user_id=c1".into()).await;
    assert_eq!(c1["workflows"].as_array().unwrap().len(), 1, "{c1}");
    assert_eq!(c1["workflows"][0]["workflow_id"], id.as_str());
    assert_eq!(c1["workflows"][0]["status"], "CANCELED");
    let completed = list("status=completed".into()).await;
    assert_eq!(
        completed["workflows"].as_array().unwrap().len(),
        2,
        "{completed}"
    );
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let query = match &token {
            Some(t) => format!("page_size=1&page_token={t}"),
            None => "page_size=1".into(),
        };
        let page = list(query).await;
        let rows = page["workflows"].as_array().unwrap();
        assert!(rows.len() <= 1, "{page}");
        seen.extend(
            rows.iter()
                .map(|r| r["workflow_id"].as_str().unwrap().to_string()),
        );
        match page["next_page_token"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["user-c1-create", "user-c2-create", "user-c3-create"]);
}

/// The `temporal` CLI's `activity execute`, as a user would run it.
fn cli_execute(server: &DevServer, queue: &str, activity: &str, id: &str, input: &Value) -> Value {
    let out = server
        .cli(&[
            "activity",
            "execute",
            "--type",
            activity,
            "--task-queue",
            queue,
            "--activity-id",
            id,
            "--start-to-close-timeout",
            "10s",
            "--input",
            &input.to_string(),
            "-o",
            "json",
        ])
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "temporal activity execute: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A stored user without what differs between two creations.
fn comparable(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        for key in ["user_id", "created_at_ms", "updated_at_ms"] {
            o.remove(key);
        }
    }
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn invoke_runs_each_reference_activity_like_temporal_activity_execute() {
    let session = Session::start().await;
    let (http, base) = (session.http.clone(), session.base.clone());
    let queue = session.host.task_queue.clone();
    let invoke = |name: &str, body: Value| {
        http.post(format!("{base}/api/v1/activities/{name}/invoke"))
            .json(&body)
            .send()
    };
    let user = |id: &str| json!({"user_id": id, "email": "invoked@example.com", "name": "Invoked"});
    let note =
        json!({"user_id": "n1", "email": "n1@example.com", "action": "create", "message": "hello"});
    // (activity, REST argument, CLI argument): equal work, compared after `comparable`.
    let cases = [
        ("ValidateUser", user("v1"), user("v1")),
        (
            "ValidateUser",
            json!({"user_id": "v2", "email": "nope", "name": ""}),
            json!({"user_id": "v2", "email": "nope", "name": ""}),
        ),
        ("CreateUser", user("r1"), user("c1")),
        ("UpdateUser", user("r1"), user("c1")),
        ("SendNotification", note.clone(), note),
        ("DeleteUser", json!("r1"), json!("c1")),
        ("DeleteUser", json!("ghost-1"), json!("ghost-2")),
    ];
    for (i, (name, rest_arg, cli_arg)) in cases.into_iter().enumerate() {
        let res = invoke(name, json!([rest_arg])).await.unwrap();
        assert_eq!(res.status(), 200, "{name}");
        let rest: Value = res.json().await.unwrap();
        let active = get_json(&http, format!("{base}/api/v1/activities/{name}")).await;
        let (server, queue) = (&session.server, queue.as_str());
        let cli = tokio::task::block_in_place(|| {
            cli_execute(server, queue, name, &format!("cli-{i}-{name}"), &cli_arg)
        });
        assert_eq!(rest["status"], cli["status"], "{name}: {rest} vs {cli}");
        if rest["status"] == "COMPLETED" {
            assert_eq!(rest["version"], active["active_digest"], "{rest}");
            assert_eq!(
                comparable(rest["result"].clone()),
                comparable(cli["result"].clone()),
                "{name}"
            );
        } else {
            assert_eq!(
                rest["error"]["type"], cli["failure"]["applicationFailureInfo"]["type"],
                "{name}: {rest} vs {cli}"
            );
        }
    }

    // Options in the body; a caller-chosen id; not waiting: 202 and a place to poll.
    let res = http
        .post(format!("{base}/api/v1/activities/ValidateUser/invoke?wait=false"))
        .json(&json!({"args": [user("w1")], "activity_id": "my-check-1", "start_to_close_ms": 5000, "maximum_attempts": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        location,
        "/api/v1/activities/ValidateUser/executions/my-check-1"
    );
    let done = eventually(Duration::from_secs(60), || async {
        let v = get_json(&http, format!("{base}{location}")).await;
        (v["status"] == "COMPLETED").then_some(v)
    })
    .await
    .expect("the execution completes");
    assert_eq!(done["result"]["valid"], true, "{done}");

    // Bad invokes never reach Temporal.
    let url = |name: &str| format!("{base}/api/v1/activities/{name}/invoke");
    assert_errors(vec![
        (
            http.post(url("NotDeployed")).json(&json!([])),
            404,
            "activity_not_found",
        ),
        (
            http.post(url("ValidateUser")).json(&json!([])),
            400,
            "invalid_arguments",
        ),
        (
            http.post(url("ValidateUser"))
                .json(&json!([{"user_id": 1}])),
            400,
            "invalid_arguments",
        ),
        (
            http.post(url("ValidateUser"))
                .json(&json!([user("a"), user("b")])),
            400,
            "invalid_arguments",
        ),
        (
            http.post(url("ValidateUser"))
                .json(&json!({"args": [user("a")], "retries": 2})),
            400,
            "invalid_field",
        ),
        (
            http.post(url("ValidateUser"))
                .json(&json!({"args": [user("a")], "start_to_close_ms": 0})),
            400,
            "invalid_field",
        ),
        (
            http.post(url("ValidateUser")).json(&json!("just a string")),
            400,
            "invalid_field",
        ),
        (
            http.post(url("Bad Name")).json(&json!([])),
            400,
            "invalid_name",
        ),
        (
            http.get(format!(
                "{base}/api/v1/activities/ValidateUser/executions/never-ran"
            )),
            404,
            "execution_not_found",
        ),
    ])
    .await;
}

/// The JSON answer of `request`.
async fn answer(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn with_auth_on_every_route_needs_a_key_and_keys_act_by_role() {
    const TOKEN: &str = "a-long-enough-admin-token";
    let session = Session::start_with(|c| c.api.admin_token = Some(TOKEN.into())).await;
    let (http, base) = (session.http.clone(), session.base.clone());
    let wasm = test_components::read(test_components::VALIDATE_USER);
    let deploy = || {
        http.put(format!("{base}/api/v1/activities/Guarded"))
            .header("content-type", "application/wasm")
            .body(wasm.clone())
    };
    assert_errors(vec![
        (deploy(), 401, "missing_token"),
        (
            deploy().bearer_auth("wrong-token-of-same-size!"),
            401,
            "invalid_token",
        ),
        (
            deploy().header("authorization", "Basic YTpi"),
            401,
            "missing_token",
        ),
        (
            http.delete(format!("{base}/api/v1/activities/ValidateUser")),
            401,
            "missing_token",
        ),
        (
            http.post(format!("{base}/api/v1/activities/ValidateUser/rollback"))
                .bearer_auth("nope"),
            401,
            "invalid_token",
        ),
        (http.get(format!("{base}/api/v1/activities")), 401, "missing_token"),
        (
            http.post(format!("{base}/api/v1/workflows/user"))
                .json(&json!({"user_id": "t0", "email": "t0@example.com", "name": "T", "action": "create"})),
            401,
            "missing_token",
        ),
    ])
    .await;
    // Probes stay open.
    for path in ["/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"] {
        let status = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_ne!(status, 401, "{path}");
    }
    let key = |role: &str| {
        let (http, base) = (http.clone(), base.clone());
        let role = role.to_string();
        async move {
            let created = answer(
                http.post(format!("{base}/api/v1/keys"))
                    .bearer_auth(TOKEN)
                    .json(&json!({"name": format!("{role}-key"), "role": role})),
            )
            .await;
            (
                created["key"]["id"].as_str().unwrap().to_string(),
                created["token"].as_str().unwrap().to_string(),
            )
        }
    };
    let (invoker_id, invoker) = key("invoker").await;
    let (_, reader) = key("reader").await;
    let (_, deployer) = key("deployer").await;
    assert_errors(vec![
        (deploy().bearer_auth(&invoker), 403, "forbidden"),
        (deploy().bearer_auth(&reader), 403, "forbidden"),
        (
            http.post(format!("{base}/api/v1/workflows/user"))
                .bearer_auth(&reader)
                .json(&json!({"user_id": "t0", "email": "t0@example.com", "name": "T", "action": "create"})),
            403,
            "forbidden",
        ),
        (http.get(format!("{base}/api/v1/keys")).bearer_auth(&deployer), 403, "forbidden"),
    ])
    .await;
    // Nothing changed.
    let listed = answer(
        http.get(format!("{base}/api/v1/activities"))
            .bearer_auth(&reader),
    )
    .await;
    assert_eq!(listed.as_array().unwrap().len(), 5, "{listed}");
    let res = deploy().bearer_auth(&deployer).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let details = answer(
        http.get(format!("{base}/api/v1/activities/Guarded"))
            .bearer_auth(&reader),
    )
    .await;
    let by = details["versions"][0]["deployed_by"].as_str().unwrap();
    assert!(by.ends_with("(deployer-key)"), "{details}");

    // The invoker starts a workflow; its memo names who started it.
    let started = answer(
        http.post(format!("{base}/api/v1/workflows/user"))
            .bearer_auth(&invoker)
            .json(&json!({"user_id": "t1", "email": "t1@example.com", "name": "T", "action": "create"})),
    )
    .await;
    let id = started["workflow_id"].as_str().unwrap().to_string();
    let described = std::process::Command::new(test_support::temporal_cli().unwrap())
        .args([
            "workflow",
            "describe",
            "--address",
            &session.server.address,
            "-w",
            &id,
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    let described = String::from_utf8_lossy(&described.stdout);
    assert!(
        described.contains(&invoker_id),
        "the memo does not name the invoker: {described}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn temporal_away_is_503_and_the_api_recovers_without_a_restart() {
    // The API starts before Temporal exists.
    let port = test_support::free_port();
    let address = format!("127.0.0.1:{port}");
    let host = start_host_at(&address, |_| {}, true);
    let http = support::http();
    let base = host.base.clone();
    eventually(Duration::from_secs(60), || async {
        http.get(format!("{base}/healthz")).send().await.ok()
    })
    .await
    .expect("the API serves without Temporal");
    let body = json!({"user_id": "r1", "email": "r1@example.com", "name": "R", "action": "create"});
    let post = || {
        http.post(format!("{base}/api/v1/workflows/user"))
            .json(&body)
    };
    assert_errors(vec![(post(), 503, "temporal_unavailable")]).await;
    assert_eq!(
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );

    // Temporal comes up on that address: the API and the worker find it.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("temporal.db");
    let mut server = tokio::task::spawn_blocking(move || DevServer::start_on(port, db, dir))
        .await
        .unwrap()
        .unwrap();
    eventually(Duration::from_secs(60), || async {
        let res = http.get(format!("{base}/readyz")).send().await.ok()?;
        (res.status() == 200).then_some(())
    })
    .await
    .expect("ready once Temporal answers");
    let (id, run_id) = start(&http, &base, body.clone()).await;
    assert_eq!(
        wait_closed(&http, &base, &id, &run_id).await["status"],
        "COMPLETED"
    );

    // Temporal stops: 503 with a clear code, the API stays up.
    tokio::task::block_in_place(|| server.stop());
    let res = eventually(Duration::from_secs(60), || async {
        let res = http
            .get(format!("{base}/api/v1/workflows/user/{id}"))
            .send()
            .await
            .ok()?;
        (res.status() == 503).then_some(res)
    })
    .await
    .expect("503 while Temporal is away");
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["code"],
        "temporal_unavailable"
    );
    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // It returns with the same database: reads and new workflows work again.
    tokio::task::block_in_place(|| server.restart()).unwrap();
    let shown = eventually(Duration::from_secs(60), || async {
        let res = http
            .get(format!("{base}/api/v1/workflows/user/{id}"))
            .send()
            .await
            .ok()?;
        (res.status() == 200).then_some(res.json::<Value>().await.ok()?)
    })
    .await
    .expect("the API recovers");
    assert_eq!(shown["status"], "COMPLETED");
    let again =
        json!({"user_id": "r2", "email": "r2@example.com", "name": "R", "action": "create"});
    let (id, run_id) = eventually(Duration::from_secs(60), || try_start(&http, &base, &again))
        .await
        .expect("starts work again");
    assert_eq!(
        wait_closed(&http, &base, &id, &run_id).await["status"],
        "COMPLETED"
    );
}
