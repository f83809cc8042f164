//! OpenTelemetry export: off by default; with `telemetry.otlp_endpoint` set, the host's spans
//! reach the collector over OTLP/HTTP, flushed on shutdown.

use std::time::Duration;

use test_support::{eventually, free_port, HttpSink};

#[tokio::test(flavor = "multi_thread")]
async fn spans_are_exported_to_the_configured_collector() {
    let collector = HttpSink::start(200).await;
    let listen = format!("127.0.0.1:{}", free_port());
    let data = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_activity-host"))
        .arg("server")
        .current_dir(data.path())
        .env("ACTIVITY_HOST_DATA_DIR", data.path())
        .env(
            "ACTIVITY_HOST_RUNTIME__COMPILED_CACHE_DIR",
            crate::support::shared_compiled_cache(),
        )
        .env("ACTIVITY_HOST_API__LISTEN", &listen)
        // Nothing answers there: the API serves anyway.
        .env(
            "ACTIVITY_HOST_WORKFLOW__TEMPORAL__ADDRESS",
            format!("127.0.0.1:{}", free_port()),
        )
        .env("ACTIVITY_HOST_TELEMETRY__OTLP_ENDPOINT", collector.url(""))
        .env("ACTIVITY_HOST_TELEMETRY__SERVICE_NAME", "otel-test-host")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let http = {
        activity_oci::install_crypto_provider();
        reqwest::Client::new()
    };
    let base = format!("http://{listen}");
    eventually(Duration::from_secs(60), || async {
        http.get(format!("{base}/healthz")).send().await.ok()
    })
    .await
    .expect("the API serves");
    for _ in 0..3 {
        http.get(format!("{base}/api/v1/activities"))
            .send()
            .await
            .unwrap();
    }
    // SIGTERM: graceful shutdown flushes the buffered spans.
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
    let exported = collector
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/traces")
        .collect::<Vec<_>>();
    assert!(!exported.is_empty(), "no traces reached the collector");
    assert_eq!(
        exported[0].headers.get("content-type").map(String::as_str),
        Some("application/x-protobuf")
    );
    // The protobuf carries the service name and the request spans' route.
    let body = exported.iter().map(|r| r.body.as_str()).collect::<String>();
    assert!(body.contains("otel-test-host"), "service name missing");
    assert!(body.contains("/api/v1/activities"), "request span missing");
}
