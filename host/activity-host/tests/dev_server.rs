//! The Temporal dev server without its dispatch floor: the one the tests (and `make dev`)
//! start hands new tasks to workers within milliseconds, and `activity-host dev` pointed at
//! a server started the default way (about 40 ms per task) says so in its log.

use std::process::{Command, Stdio};
use std::time::Duration;

use activity_worker::probe::{dispatch_wait, SLOW_DISPATCH};
use temporal_dev_server::DevServerOptions;
use test_support::{eventually, free_port, temporal_cli, DevServer};

/// The probe's median dispatch wait on a fresh in-memory dev server that `start` starts.
async fn probed_wait(
    start: impl FnOnce() -> Result<DevServer, test_support::DevServerError> + Send + 'static,
) -> Duration {
    let server = tokio::task::spawn_blocking(start)
        .await
        .unwrap()
        .expect("dev server");
    let client = activity_worker::connect(&server.address, "default")
        .await
        .unwrap();
    dispatch_wait(&client, "default").await.expect("probe")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dev_server_hands_tasks_over_without_the_default_wait() {
    let wait = probed_wait(DevServer::start_in_memory).await;
    eprintln!("dispatch wait with the dynamic config: {wait:?}");
    assert!(
        wait < SLOW_DISPATCH,
        "median dispatch wait {wait:?} with the dynamic config"
    );
}

/// `bench-e2e --server-rps` starts its server this way: the readers' limit it names is the
/// one the server runs with (at Temporal's default of 20, the probe sees the slow dispatch).
#[tokio::test(flavor = "multi_thread")]
async fn a_server_started_with_the_default_reader_limit_dispatches_slowly() {
    let wait = probed_wait(|| DevServer::start_measured(false, Some(20))).await;
    assert!(
        wait >= SLOW_DISPATCH,
        "median dispatch wait {wait:?} at 20 reads per second"
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
    options.dynamic_config.clear();
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
    let warned = eventually(Duration::from_secs(90), || async {
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
