//! The Temporal dev server without its dispatch floor: the one the tests (and `make dev`)
//! start is handed the raised readers' limits, a limit handed to a server is the one its
//! queues run at, and `activity-host dev` pointed at a server with a low limit says so in
//! its log. Speeds are measured by `bench-e2e --server-rps`, not asserted here.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use activity_worker::probe::{dispatch_rounds, SLOW_DISPATCH};
use temporal_dev_server::{DevServerOptions, DYNAMIC_CONFIG};
use test_support::{eventually, free_port, temporal_cli, DevServer};

/// The dev server the tests and `make dev` start is handed the raised readers' limits
/// (what they buy is measured by `bench-e2e --server-rps`, not asserted here).
#[test]
fn the_dev_server_is_started_with_the_raised_reader_limits() {
    let server = DevServer::start_in_memory().expect("dev server");
    let argv = server.command_line();
    for (key, value) in DYNAMIC_CONFIG {
        let setting = format!("{key}={value}");
        assert!(
            argv.windows(2)
                .any(|w| w[0] == "--dynamic-config-value" && w[1] == setting),
            "{setting} not in {argv:?}"
        );
    }
}

/// The readers' limit a server is started with is the one its queues run at: at one read
/// a second, tasks handed out one after another take at least a second each. A lower bound
/// on time, which a slow or busy machine cannot break (it only adds time); at Temporal's
/// default of 20 or the project's 1000, the same rounds take a fraction of it.
#[tokio::test(flavor = "multi_thread")]
async fn the_reader_limit_a_server_is_started_with_is_the_one_it_runs_at() {
    let server = tokio::task::spawn_blocking(|| DevServer::start_measured(false, Some(1)))
        .await
        .unwrap()
        .expect("dev server");
    let client = activity_worker::connect(&server.address, "default")
        .await
        .unwrap();
    // Three rounds: nine transfer-queue reads in a chain (start, activity, workflow task
    // each), so at least eight seconds after the limiter's burst of one.
    let started = Instant::now();
    let waits = dispatch_rounds(&client, "default", 3).await.expect("probe");
    let took = started.elapsed();
    eprintln!("three probe rounds at 1 read/s: {took:?}, waits {waits:?}");
    assert!(
        took >= Duration::from_secs(5),
        "{took:?}: the limit did not apply"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_warns_when_the_server_it_finds_runs_with_the_default_limit() {
    let dir = tempfile::tempdir().unwrap();
    // A dev server started the way its documentation shows, without our dynamic config.
    let port = free_port();
    let mut options = DevServerOptions::new(
        temporal_cli().unwrap(),
        "127.0.0.1",
        port,
        dir.path().join("server.log"),
    );
    // Below Temporal's default of 20 reads a second: at the default, the probe's median wait
    // is near its threshold on a quiet machine (and shorter on a busy one, whose slower
    // round trips let the limiter refill), so the test would hang on the machine's pace.
    // At 5 a task waits about 200 ms, far above the threshold on any machine.
    options.dynamic_config = vec![("history.transferProcessorMaxPollRPS".into(), "5".into())];
    let server = tokio::task::spawn_blocking(move || {
        temporal_dev_server::DevServer::start(options, Duration::from_secs(60))
    })
    .await
    .unwrap()
    .expect("plain dev server");

    let log = dir.path().join("host.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut host = Command::new(env!("CARGO_BIN_EXE_activity-host"))
        .arg("dev")
        .env(
            "ACTIVITY_HOST_WORKFLOW__TEMPORAL__ADDRESS",
            server.address(),
        )
        .env("ACTIVITY_HOST_DATA_DIR", dir.path().join("data"))
        .env(
            "ACTIVITY_HOST_API__LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
        .env(
            "ACTIVITY_HOST_ACTIVITIES__COMPONENTS_DIR",
            std::path::Path::new(test_components::VALIDATE_USER)
                .parent()
                .unwrap(),
        )
        .env("ACTIVITY_HOST_TELEMETRY__LOG_FORMAT", "json")
        .env_remove("RUST_LOG")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let warned = eventually(Duration::from_secs(180), || async {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines()
            .find(|l| l.contains("transferProcessorMaxPollRPS") && l.contains("WARN"))
            .map(str::to_string)
    })
    .await;
    let _ = host.kill();
    let _ = host.wait();
    let line = warned.unwrap_or_else(|| {
        panic!(
            "no warning about the dispatch limit; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
    let wait = entry["dispatch_wait_ms"].as_f64().unwrap();
    eprintln!("dispatch wait at Temporal's default: {wait:.1} ms");
    assert!(wait > SLOW_DISPATCH.as_secs_f64() * 1000.0, "{line}");
}

/// A server whose namespace does not run standalone activities: the host says so in
/// `/readyz` and answers invoke with a code naming the server's version and the switch,
/// instead of an opaque failure; workflows are not affected.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_without_standalone_activities_is_named_and_invoke_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = DevServerOptions::new(
        temporal_cli().unwrap(),
        "127.0.0.1",
        free_port(),
        dir.path().join("server.log"),
    );
    options
        .dynamic_config
        .push(("activity.enableStandalone".into(), "false".into()));
    let server = tokio::task::spawn_blocking(move || {
        temporal_dev_server::DevServer::start(options, Duration::from_secs(60))
    })
    .await
    .unwrap()
    .expect("dev server");
    let host = crate::support::start_host_at(&server.address(), |_| {}, true);
    let http = crate::support::http();
    let ready = eventually(Duration::from_secs(60), || async {
        let body = crate::support::try_get_json(&http, format!("{}/readyz", host.base)).await?;
        body["server"].is_object().then_some(body)
    })
    .await
    .expect("the host read its server");
    assert_eq!(ready["server"]["standalone_activities"], false, "{ready}");
    let limitation = ready["limitations"][0].as_str().unwrap_or_default();
    assert!(limitation.contains("activity.enableStandalone"), "{ready}");
    let res = http
        .post(format!(
            "{}/api/v1/activities/ValidateUser/invoke",
            host.base
        ))
        .json(&serde_json::json!([{"user_id": "u1", "email": "a@b.io", "name": "Ann"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 501);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body["error"]["code"], "standalone_activities_unavailable",
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&ready["server"]["version"].as_str().unwrap().to_string()),
        "{message}"
    );
    // Workflows run as ever.
    let (id, run) = crate::support::start(
        &http,
        &host.base,
        serde_json::json!({"user_id": "sa-off", "email": "s@example.com", "name": "S", "action": "create"}),
    )
    .await;
    let done = crate::support::wait_closed(&http, &host.base, &id, &run).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
}
