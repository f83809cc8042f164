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
