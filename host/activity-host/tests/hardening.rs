//! A shared host against callers it refuses: a refused request's body is neither kept nor
//! read whole before the answer goes out.

use crate::support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "a-long-enough-admin-token";
/// What each refused caller sends: more than any route takes (the deploy limit is 50 MiB
/// by default, JSON routes take 1 MiB).
const BODY: usize = 48 << 20;
const CHUNK: usize = 64 << 10;

/// Sends `head` and then a `BODY`-byte body on a plain connection to `base`, without
/// waiting; answers the response's status line and how much of the body had been written
/// when the response began to arrive.
async fn refused_upload(base: &str, head: String) -> (String, usize) {
    let address = base.trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(head.as_bytes()).await.unwrap();
    let written = Arc::new(AtomicUsize::new(0));
    let sender = tokio::spawn({
        let written = written.clone();
        async move {
            let chunk = vec![b' '; CHUNK];
            while written.load(Ordering::SeqCst) < BODY {
                // The host may stop reading and close: then the rest is not sent.
                if writer.write_all(&chunk).await.is_err() {
                    break;
                }
                written.fetch_add(CHUNK, Ordering::SeqCst);
            }
        }
    });
    let mut response = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(120), reader.read(&mut response))
        .await
        .expect("an answer within two minutes")
        .expect("the answer, not a reset connection");
    let at_answer = written.load(Ordering::SeqCst);
    sender.abort();
    let text = String::from_utf8_lossy(&response[..n]).to_string();
    let status = text.lines().next().unwrap_or_default().to_string();
    (status, at_answer)
}

fn head(method: &str, path: &str, auth: Option<&str>) -> String {
    let auth = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         {auth}Content-Length: {BODY}\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_body_is_answered_before_it_is_read_whole() {
    let (host, _http) = support::api_only(|c| c.api.admin_token = Some(TOKEN.into())).await;
    let cases = [
        // No token, on a deploy route (whose limit is larger than the body): 401 from the
        // auth layer.
        (head("PUT", "/api/v1/activities/Big", None), "401"),
        // A wrong token.
        (
            head(
                "PUT",
                "/api/v1/activities/Big",
                Some("wrong-token-of-same-size!"),
            ),
            "401",
        ),
        // A declared length over the route's limit: 413 before any handler (before auth).
        (head("POST", "/api/v1/workflows/user", None), "413"),
        (head("POST", "/api/v1/workflows/user", Some(TOKEN)), "413"),
    ];
    for (head, status) in cases {
        let (line, written) = refused_upload(&host.base, head.clone()).await;
        let request = head.lines().next().unwrap_or_default();
        assert!(line.contains(status), "{request}: answered {line:?}");
        // Before: the host read (and kept) the whole body first. Now it reads at most a
        // little of it; what the kernels' socket buffers took is the rest.
        assert!(
            written < BODY / 2,
            "{request}: {written} of {BODY} bytes were taken before the answer"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_sending_a_few_mib_too_many_reads_its_413_not_a_reset() {
    let (host, http) = support::api_only(|_| {}).await;
    // 8 MiB against the 1 MiB JSON limit, sent by an ordinary client that writes the whole
    // body while it waits for the answer.
    let body = format!("{{\"user_id\":\"{}\"}}", "x".repeat(8 << 20));
    for _ in 0..3 {
        let res = http
            .post(format!("{}/api/v1/workflows/user", host.base))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("the answer, not a reset connection");
        assert_eq!(res.status(), 413);
        let answer: serde_json::Value = res.json().await.unwrap();
        assert_eq!(answer["error"]["code"], "body_too_large", "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn made_up_methods_do_not_grow_the_metrics() {
    let (host, http) = support::api_only(|_| {}).await;
    for i in 0..5 {
        let method = reqwest::Method::from_bytes(format!("MADEUP{i}").as_bytes()).unwrap();
        let res = http
            .request(method, format!("{}/api/v1/activities", host.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "MADEUP{i}");
    }
    let metrics = support::get_text(&http, format!("{}/metrics", host.base)).await;
    let requests: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("http_requests_total{"))
        .collect();
    assert!(
        requests.iter().all(|l| !l.contains("MADEUP")),
        "a label per made-up method: {requests:#?}"
    );
    assert!(
        requests.iter().any(|l| l.contains("method=\"other\"")),
        "made-up methods are counted as other: {requests:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_answers_503_once_the_worker_has_stopped_for_good() {
    let server = tokio::task::spawn_blocking(test_support::DevServer::start)
        .await
        .unwrap()
        .unwrap();
    // A namespace the server does not have: the worker cannot poll, ever.
    let host = support::start_host_with(&server, |c| {
        c.workflow.temporal.namespace = "no-such-namespace".into();
    });
    let http = support::http();
    let answer = test_support::eventually(Duration::from_secs(60), || async {
        let res = http
            .get(format!("{}/healthz", host.base))
            .send()
            .await
            .ok()?;
        let status = res.status().as_u16();
        let text = res.text().await.ok()?;
        (status == 503).then_some(text)
    })
    .await
    .expect("/healthz turns 503");
    assert!(
        answer.starts_with("worker stopped: ") && answer.contains("no-such-namespace"),
        "{answer}"
    );
    let ready = http
        .get(format!("{}/readyz", host.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
}

/// `POST /api/v1/workflows/user` with `body` (and an `Idempotency-Key`): its status and answer.
async fn post_start(
    http: &reqwest::Client,
    base: &str,
    body: &serde_json::Value,
    key: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut request = http
        .post(format!("{base}/api/v1/workflows/user"))
        .json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let res = request.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_different_request_for_an_open_run_is_refused_not_dropped() {
    let server = tokio::task::spawn_blocking(test_support::DevServer::start)
        .await
        .unwrap()
        .unwrap();
    // No worker polls: every run stays open.
    let host = support::start_host_at(&server.address, |_| {}, false);
    let http = support::http();
    let base = host.base.clone();
    test_support::eventually(Duration::from_secs(60), || async {
        let res = http.get(format!("{base}/readyz")).send().await.ok()?;
        (res.status() == 200).then_some(())
    })
    .await
    .expect("the API gets ready");
    let update = |email: &str| serde_json::json!({"user_id": "u1", "email": email, "name": "A", "action": "update"});
    let (status, first) = post_start(&http, &base, &update("a@b.io"), None).await;
    assert_eq!(status, 201, "{first}");
    // The same request again: the same run.
    let (status, again) = post_start(&http, &base, &update("a@b.io"), None).await;
    assert_eq!(
        (status, &again["run_id"]),
        (200, &first["run_id"]),
        "{again}"
    );
    // Another update of the same user while the first is open: refused, not answered with
    // the first run's ids (the second payload was dropped before).
    let (status, other) = post_start(&http, &base, &update("c@d.io"), None).await;
    assert_eq!(status, 409, "{other}");
    assert_eq!(other["error"]["code"], "request_conflict", "{other}");
    // An Idempotency-Key is bound to its request.
    let (status, keyed) = post_start(&http, &base, &update("c@d.io"), Some("k-1")).await;
    assert_eq!(status, 201, "{keyed}");
    let (status, retried) = post_start(&http, &base, &update("c@d.io"), Some("k-1")).await;
    assert_eq!(
        (status, &retried["run_id"]),
        (200, &keyed["run_id"]),
        "{retried}"
    );
    let (status, reused) = post_start(&http, &base, &update("e@f.io"), Some("k-1")).await;
    assert_eq!(status, 422, "{reused}");
    assert_eq!(
        reused["error"]["code"], "idempotency_key_reused",
        "{reused}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_keyed_request_retried_after_its_run_closed_finds_that_run() {
    let session = support::Session::start().await;
    let (http, base) = (&session.http, &session.base);
    let create = serde_json::json!({"user_id": "keyed-1", "email": "k@b.io", "name": "K", "action": "create"});
    let (status, first) = post_start(http, base, &create, Some("once")).await;
    assert_eq!(status, 201, "{first}");
    let (id, run) = (
        first["workflow_id"].as_str().unwrap(),
        first["run_id"].as_str().unwrap(),
    );
    let closed = support::wait_closed(http, base, id, run).await;
    assert_eq!(closed["status"], "COMPLETED", "{closed}");
    // Retried after it closed: that run, not a second one (which notified twice before).
    let (status, retried) = post_start(http, base, &create, Some("once")).await;
    assert_eq!(
        (status, &retried["run_id"]),
        (200, &first["run_id"]),
        "{retried}"
    );
    let mut other = create.clone();
    other["email"] = "x@y.io".into();
    let (status, reused) = post_start(http, base, &other, Some("once")).await;
    assert_eq!(status, 422, "{reused}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_api_keys_from_one_address_get_429_before_any_lookup() {
    let (host, http) = support::api_only(|c| {
        c.api.admin_token = Some(TOKEN.into());
        c.api.quotas.failed_auth_per_minute = Some(1);
    })
    .await;
    let url = format!("{}/api/v1/activities", host.base);
    let get = |token: String| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let res = http.get(url).bearer_auth(token).send().await.unwrap();
            let retry = res.headers().get("retry-after").cloned();
            (res.status().as_u16(), retry, res.text().await.unwrap())
        }
    };
    let made_up = |n: u32| format!("ahk_{n:016x}_{}", "0".repeat(64));
    let (status, _, body) = get(made_up(1)).await;
    assert_eq!(status, 401, "{body}");
    // One a minute from this address: the next unknown key is not looked up.
    let (status, retry, body) = get(made_up(2)).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("too_many_failed_auths"), "{body}");
    assert!(retry.is_some(), "no Retry-After");
    // The admin token needs no lookup: still served.
    let (status, _, body) = get(TOKEN.into()).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn activity_types_a_caller_makes_up_do_not_become_metric_labels() {
    use test_support::caller::{self, CallRequest};

    let session = support::Session::start().await;
    let queue = format!("caller-{}", test_support::free_port());
    let _caller = caller::start_caller_worker(&session.server.address, &queue);
    let client = activity_worker::connect(&session.server.address, "default")
        .await
        .unwrap();
    // Any Temporal client may schedule any type name on the host's queue.
    let made_up = format!("MadeUp{}", test_support::free_port());
    for i in 0..5 {
        let mut request =
            CallRequest::new(&format!("{made_up}x{i}"), vec![], &session.host.task_queue);
        request.maximum_attempts = 1;
        let result = caller::call(&client, &queue, &format!("{made_up}-{i}"), request).await;
        assert!(
            result
                .failures
                .iter()
                .any(|(k, _)| k == "ActivityNotDeployed"),
            "{result:?}"
        );
    }
    let metrics = support::get_text(&session.http, format!("{}/metrics", session.base)).await;
    let counted = metrics
        .lines()
        .find(|l| l.starts_with("activity_tasks_not_deployed_total"))
        .expect("the refusals are counted");
    assert!(
        !metrics.contains(&made_up),
        "a made-up type became a label: {counted}"
    );
}

/// Reads `stream` until the peer closes it; `None` when it stays open past `within`.
async fn read_to_close(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()?;
    Some(got)
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_and_idle_connections_are_closed_and_free_their_places() {
    let (host, _) = support::api_only(|c| {
        c.api.max_connections = 2;
        c.api.header_read_timeout_ms = 500;
    })
    .await;
    let address = host.base.trim_start_matches("http://").to_string();
    // Two connections that never send a request take both places.
    let mut silent = Vec::new();
    for _ in 0..2 {
        silent.push(tokio::net::TcpStream::connect(&address).await.unwrap());
    }
    // A new client is still answered: the silent ones are closed after the timeout.
    let answered = tokio::time::timeout(
        Duration::from_secs(30),
        support::http().get(format!("{}/healthz", host.base)).send(),
    )
    .await
    .expect("a request waited behind silent connections")
    .unwrap();
    assert_eq!(answered.status(), 200);
    for stream in &mut silent {
        assert!(
            read_to_close(stream, Duration::from_secs(30))
                .await
                .is_some(),
            "a silent connection stayed open"
        );
    }
    // A keep-alive connection idle after its answer is closed too.
    let mut idle = tokio::net::TcpStream::connect(&address).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let got = read_to_close(&mut idle, Duration::from_secs(30))
        .await
        .expect("an idle keep-alive connection stayed open");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}
