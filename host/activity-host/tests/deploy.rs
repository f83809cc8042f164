//! Deploy, swap and roll back activity versions through the REST API while real workflows
//! run on the dev server; bad deploys change nothing.

use crate::support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{assert_errors, cli, get_json, start, wait_closed, Session};

fn seed_user(id: &str) -> Value {
    json!({"user_id": id, "email": "test@example.com", "name": "Test User", "action": "create"})
}

async fn put(http: &reqwest::Client, url: String, body: Vec<u8>) -> reqwest::Response {
    http.put(url)
        .header("content-type", "application/wasm")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_v2_then_roll_back_to_v1_between_workflows() {
    let session = Session::start().await;
    let (http, base) = (session.http.clone(), session.base.clone());

    let before: Value = get_json(&http, format!("{base}/api/v1/activities/ValidateUser")).await;
    let v1 = before["active_digest"].as_str().unwrap().to_string();

    // v2: a stricter ValidateUser from another component, deployed over REST.
    let url = format!("{base}/api/v1/activities/ValidateUser?export=strict-validate-user&allow_host=hosts.invalid");
    let res = put(
        &http,
        url.clone(),
        test_components::read(test_components::MISBEHAVING),
    )
    .await;
    assert_eq!(res.status(), 201);
    let deployed: Value = res.json().await.unwrap();
    let v2 = deployed["version"]["digest"].as_str().unwrap().to_string();
    assert_ne!(v1, v2);
    // The same deploy again changes nothing.
    let again = put(
        &http,
        url,
        test_components::read(test_components::MISBEHAVING),
    )
    .await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["changed"], false);

    let (id, run) = start(&http, &base, seed_user("u-v2")).await;
    let done = wait_closed(&http, &base, &id, &run).await;
    assert_eq!(done["status"], "FAILED", "{done}");
    assert!(
        done["error"]["message"]
            .as_str()
            .unwrap()
            .contains("strict validator"),
        "{done}"
    );

    let back = http
        .post(format!("{base}/api/v1/activities/ValidateUser/rollback"))
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 200);
    assert_eq!(back.json::<Value>().await.unwrap()["digest"], v1.as_str());
    let (id, run) = start(&http, &base, seed_user("u-v1")).await;
    assert_eq!(
        wait_closed(&http, &base, &id, &run).await["status"],
        "COMPLETED"
    );

    // Back to v2 by digest, then listing shows it active with the whole history kept.
    let to_v2 = http
        .post(format!("{base}/api/v1/activities/ValidateUser/rollback"))
        .json(&json!({"digest": v2}))
        .send()
        .await
        .unwrap();
    assert_eq!(to_v2.status(), 200);
    let listed: Value = get_json(&http, format!("{base}/api/v1/activities")).await;
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "ValidateUser")
        .unwrap()
        .clone();
    assert_eq!(entry["active_digest"], v2.as_str());
    let details: Value = get_json(&http, format!("{base}/api/v1/activities/ValidateUser")).await;
    assert_eq!(details["versions"].as_array().unwrap().len(), 2);

    let removed = http
        .delete(format!("{base}/api/v1/activities/ValidateUser"))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    let gone = http
        .get(format!("{base}/api/v1/activities/ValidateUser"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_deploys_are_4xx_and_store_nothing() {
    let session = Session::start().await;
    let (http, base) = (session.http.clone(), session.base.clone());
    let url = |name: &str, query: &str| format!("{base}/api/v1/activities/{name}{query}");
    let wasm = |path: &str| test_components::read(path);
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            http.put(url("Probe", ""))
                .header("content-type", "application/wasm"),
            400,
            "empty_body",
        ),
        (
            http.put(url("Probe", ""))
                .header("content-type", "application/json")
                .body(wasm(test_components::VALIDATE_USER)),
            415,
            "unsupported_media_type",
        ),
        (
            http.put(url("Probe", ""))
                .body(wasm(test_components::VALIDATE_USER)),
            415,
            "unsupported_media_type",
        ),
        (
            http.put(url("Probe", ""))
                .header("content-type", "application/wasm")
                .body(b"garbage".to_vec()),
            422,
            "component_refused",
        ),
        (
            http.put(url("Probe", ""))
                .header("content-type", "application/wasm")
                .body(b"\0asm\x01\0\0\0".to_vec()),
            422,
            "component_refused",
        ),
        (
            http.put(url("Probe", ""))
                .header("content-type", "application/wasm")
                .body(wasm(test_components::CREATE_USER)),
            422,
            "component_refused",
        ),
        (
            http.put(url("Probe", ""))
                .header("content-type", "application/wasm")
                .body(wasm(test_components::FORBIDDEN)),
            422,
            "component_refused",
        ),
        (
            http.put(url("bad%20name", ""))
                .header("content-type", "application/wasm")
                .body(wasm(test_components::VALIDATE_USER)),
            400,
            "invalid_name",
        ),
        (
            http.put(url("Probe", "?max_memory_bytes=lots"))
                .header("content-type", "application/wasm")
                .body(wasm(test_components::VALIDATE_USER)),
            400,
            "invalid_parameter",
        ),
        (
            http.put(url("Probe", "?sudo=1"))
                .header("content-type", "application/wasm")
                .body(wasm(test_components::VALIDATE_USER)),
            400,
            "invalid_parameter",
        ),
        (
            http.post(url("Nope", "/rollback")),
            404,
            "activity_not_found",
        ),
        (
            http.post(url("ValidateUser", "/rollback")),
            409,
            "no_earlier_version",
        ),
        (
            http.post(url("ValidateUser", "/rollback"))
                .json(&json!({"digest": "sha256:00"})),
            404,
            "version_not_found",
        ),
        (http.delete(url("Nope", "")), 404, "activity_not_found"),
    ];
    assert_errors(cases).await;
    let refused = put(&http, url("Probe", ""), wasm(test_components::CREATE_USER)).await;
    let message = refused.json::<Value>().await.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("wasi:keyvalue/store") && message.contains("key_value_stores"),
        "{message}"
    );

    // Nothing was stored: only the five reference activities, one version each.
    let listed: Value = get_json(&http, format!("{base}/api/v1/activities")).await;
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "CreateUser",
            "DeleteUser",
            "SendNotification",
            "UpdateUser",
            "ValidateUser"
        ]
    );
    for a in listed.as_array().unwrap() {
        assert_eq!(a["active_seq"], 1, "{a}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_deploys_lists_rolls_back_and_removes() {
    let session = Session::start().await;
    let (http, base) = (session.http.clone(), session.base.clone());
    let b = base.clone();
    let run = move |args: Vec<&'static str>| {
        let b = b.clone();
        tokio::task::spawn_blocking(move || cli(&b, &args))
    };

    let out = run(vec![
        "deploy",
        test_components::MISBEHAVING,
        "--name",
        "Adder",
        "--export",
        "add",
        "--allow-host",
        "hosts.invalid",
    ])
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("deployed Adder: sha256:"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let out = run(vec!["activities", "list", "--output", "json"])
        .await
        .unwrap();
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["name"] == "Adder"));

    let out = run(vec!["activities", "show", "Adder"]).await.unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("*   1 sha256:"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Nothing to roll back to: a one-line error and a failing exit code.
    let out = run(vec!["activities", "rollback", "Adder"]).await.unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no_earlier_version"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A refused component: the reason, and a failing exit code.
    let out = run(vec![
        "deploy",
        test_components::CREATE_USER,
        "--name",
        "Adder",
    ])
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("key_value_stores"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(vec!["activities", "remove", "Adder"]).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gone = http
        .get(format!("{base}/api/v1/activities/Adder"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn hot_swaps_under_load_lose_no_workflow() {
    use futures::StreamExt;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use test_support::caller::{self, CallRequest};
    use test_support::eventually;

    const WORKFLOWS: usize = 200;
    const SWAPS: usize = 20;
    let session = Session::start().await;
    let (http, base) = (session.http.clone(), session.base.clone());
    // One activity whose two versions answer "1" and "2".
    let deploy_url = |v: usize| {
        format!("{base}/api/v1/activities/WhichVersion?export=config-get&allow_host=hosts.invalid&config=v%3D{v}")
    };
    let first = put(
        &http,
        deploy_url(1),
        test_components::read(test_components::MISBEHAVING),
    )
    .await;
    assert_eq!(first.status(), 201);

    let queue = format!("caller-{}", test_support::free_port());
    let _caller = caller::start_caller_worker(&session.server.address, &queue);
    let client = activity_worker::connect(&session.server.address, "default")
        .await
        .unwrap();

    // Swap k happens once a workflow that started after swap k - 1 has completed: that
    // workflow ran entirely on one version, so every version is served whatever the
    // machine's speed. Workflows keep starting until the swaps are done and at least
    // WORKFLOWS have run.
    let generation = Arc::new(AtomicUsize::new(0));
    let completed: Arc<Mutex<Vec<usize>>> = Arc::new(Mutex::new(vec![0; SWAPS + 1]));
    let swapped = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (http, generation, completed, swapped) = (
            http.clone(),
            generation.clone(),
            completed.clone(),
            swapped.clone(),
        );
        let urls: Vec<String> = (0..SWAPS).map(|i| deploy_url(2 - i % 2)).collect();
        tokio::spawn(async move {
            let one_ran = |k: usize| {
                let completed = completed.clone();
                async move {
                    eventually(Duration::from_secs(60), || async {
                        (completed.lock().unwrap()[k] > 0).then_some(())
                    })
                    .await
                    .unwrap_or_else(|| panic!("no workflow ran on version {k}"));
                }
            };
            for (k, url) in urls.into_iter().enumerate() {
                one_ran(k).await;
                let res = put(
                    &http,
                    url,
                    test_components::read(test_components::MISBEHAVING),
                )
                .await;
                assert!(res.status().is_success(), "swap refused: {}", res.status());
                generation.store(k + 1, Ordering::SeqCst);
            }
            one_ran(SWAPS).await;
            swapped.store(true, Ordering::SeqCst);
        })
    };
    let task_queue = session.host.task_queue.clone();
    let results: Vec<_> = futures::stream::iter(0..)
        .take_while(|i| {
            let more = *i < WORKFLOWS || !swapped.load(Ordering::SeqCst);
            async move { more }
        })
        .map(|i| {
            let (client, queue, task_queue) = (client.clone(), queue.clone(), task_queue.clone());
            let (generation, completed) = (generation.clone(), completed.clone());
            async move {
                let started = generation.load(Ordering::SeqCst);
                let req = CallRequest::new("WhichVersion", vec![json!("v")], &task_queue);
                let result = caller::call(&client, &queue, &format!("swap-{i}"), req).await;
                completed.lock().unwrap()[started] += 1;
                result
            }
        })
        .buffer_unordered(25)
        .collect()
        .await;
    swapper.await.unwrap();

    let mut seen = std::collections::BTreeMap::new();
    for r in &results {
        assert!(
            r.failures.is_empty(),
            "a workflow failed during swaps: {r:?}"
        );
        let v = r.output.clone().expect("a result");
        assert!(
            v == json!("1") || v == json!("2"),
            "a result from no single version: {v}"
        );
        *seen.entry(v.to_string()).or_insert(0) += 1;
    }
    assert!(results.len() >= WORKFLOWS, "{}", results.len());
    assert_eq!(seen.len(), 2, "both versions served: {seen:?}");
    let details: Value = get_json(&http, format!("{base}/api/v1/activities/WhichVersion")).await;
    assert_eq!(details["versions"].as_array().unwrap().len(), SWAPS + 1);
}
