//! A host heartbeats for the guests it runs: a live guest that never heartbeats outlives an
//! activity's heartbeat timeout, so every activity the host schedules can carry one, and an
//! attempt whose host died is retried after it rather than after the start-to-close timeout.

use crate::support;

use serde_json::json;
use support::Session;
use test_support::caller::{self, CallRequest};

#[tokio::test(flavor = "multi_thread")]
async fn a_live_guest_that_never_heartbeats_outlives_its_heartbeat_timeout() {
    let session = Session::start().await;
    let (http, base) = (&session.http, &session.base);
    // `resume` with one step sleeps for the step, then heartbeats once: 5 s of silence.
    let res = http
        .put(format!(
            "{base}/api/v1/activities/Quiet?export=resume&allow_host=hosts.invalid"
        ))
        .header("content-type", "application/wasm")
        .body(test_components::read(test_components::MISBEHAVING))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());

    let queue = format!("caller-{}", test_support::free_port());
    let _caller = caller::start_caller_worker(&session.server.address, &queue);
    let client = activity_worker::connect(&session.server.address, "default")
        .await
        .unwrap();
    let mut request = CallRequest::new(
        "Quiet",
        vec![json!(1), json!(5000)],
        &session.host.task_queue,
    );
    request.heartbeat_timeout_ms = Some(1500);
    request.start_to_close_ms = 60_000;
    request.maximum_attempts = 1;
    let result = caller::call(&client, &queue, "quiet-guest", request).await;
    // Before, the attempt timed out (Timeout:HEARTBEAT) 1.5 s in, the guest still running.
    assert!(result.failures.is_empty(), "{:?}", result.failures);
    assert_eq!(result.output, Some(json!(0)), "{result:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_sigterm_readyz_turns_503_while_the_api_still_serves() {
    use std::time::Duration;
    use test_support::{eventually, free_port};

    let listen = format!("127.0.0.1:{}", free_port());
    let data = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_activity-host"))
        .arg("server")
        .current_dir(data.path())
        .env("ACTIVITY_HOST_DATA_DIR", data.path())
        .env(
            "ACTIVITY_HOST_RUNTIME__COMPILED_CACHE_DIR",
            support::shared_compiled_cache(),
        )
        .env("ACTIVITY_HOST_API__LISTEN", &listen)
        // Far longer than the test needs: the listener stays open while it looks.
        .env("ACTIVITY_HOST_API__SHUTDOWN_DELAY_MS", "60000")
        .env(
            "ACTIVITY_HOST_WORKFLOW__TEMPORAL__ADDRESS",
            format!("127.0.0.1:{}", free_port()),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let http = support::http();
    let base = format!("http://{listen}");
    let readiness = || async {
        let res = http.get(format!("{base}/readyz")).send().await.ok()?;
        let status = res.status().as_u16();
        Some((status, res.json::<serde_json::Value>().await.ok()?))
    };
    let (_, before) = eventually(Duration::from_secs(60), readiness)
        .await
        .expect("the API serves");
    assert_eq!(before["draining"], false, "{before}");

    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let (status, after) = eventually(Duration::from_secs(30), || async {
        readiness()
            .await
            .filter(|(_, body)| body["draining"] == true)
    })
    .await
    .expect("/readyz says the host is draining");
    assert_eq!(status, 503, "{after}");
    assert_eq!(after["ready"], false, "{after}");
    // Everything else is still served during the delay.
    let list = http
        .get(format!("{base}/api/v1/activities"))
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    let _ = child.kill();
    let _ = child.wait();
}
