//! Runs the assembled host (runtime, registry, worker, REST API) against a dev server.
#![allow(dead_code)]

pub mod docs;
pub mod fleet;

use std::time::Duration;

use activity_host::config::Config;
use activity_host::host::Host;
use serde_json::Value;
use test_support::{eventually, DevServer};
use tokio::sync::watch;

pub struct RunningHost {
    pub base: String,
    pub task_queue: String,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub data: tempfile::TempDir,
}

impl Drop for RunningHost {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An HTTP client for the tests (the process's TLS provider installed first).
pub fn http() -> reqwest::Client {
    activity_oci::install_crypto_provider();
    reqwest::Client::new()
}

pub fn start_host(server: &DevServer) -> RunningHost {
    start_host_with(server, |_| {})
}

/// Like [`start_host`], with `adjust` applied to the configuration.
pub fn start_host_with(server: &DevServer, adjust: impl FnOnce(&mut Config)) -> RunningHost {
    start_host_at(&server.address, adjust, true)
}

/// Takes out of `cmd`'s environment what `cargo test` sets for this test binary
/// (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, ...), which a user's shell does not have: a build run
/// with them looks changed to build scripts that watch them (ring's), and rebuilds half the
/// dependency graph, then again for the next build run without them.
pub fn without_cargo_test_env(cmd: &mut std::process::Command) -> &mut std::process::Command {
    const SET_BY_CARGO: &[&str] = &[
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "OUT_DIR",
    ];
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_") || SET_BY_CARGO.contains(&key.as_ref()) {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd
}

/// The compiled-component cache every test host shares (`runtime.compiled_cache_dir`), in the
/// target directory: a component the suite compiled once (keyed by digest and engine
/// settings) is not compiled again by each of the hundred hosts the tests start.
pub fn shared_compiled_cache() -> std::path::PathBuf {
    std::env::current_exe()
        .unwrap()
        .ancestors()
        .nth(3)
        .unwrap()
        .join("test-compiled-cache")
}

/// A host with its API on Temporal at `address` (which need not answer yet), and a worker
/// when `worker` is true.
pub fn start_host_at(address: &str, adjust: impl FnOnce(&mut Config), worker: bool) -> RunningHost {
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.workflow.temporal.address = address.to_string();
    config.workflow.temporal.task_queue = format!("seed-{}", test_support::free_port());
    config.data_dir.0 = data.path().to_path_buf();
    config.runtime.compiled_cache_dir = Some(shared_compiled_cache());
    config.activities.components_dir = std::path::Path::new(test_components::VALIDATE_USER)
        .parent()
        .unwrap()
        .to_path_buf();
    config.api.listen = format!("127.0.0.1:{}", test_support::free_port());
    config.worker.user_workflow.initial_interval_ms = 100;
    config.activities.watch_interval_ms = 100;
    adjust(&mut config);
    let base = format!("http://{}", config.api.listen);
    let task_queue = config.workflow.temporal.task_queue.clone();
    let (stop, stopped) = watch::channel(false);
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let host = Host::open(config).await.unwrap();
            host.start_registry().await.unwrap();
            host.deploy_reference_activities().await.unwrap();
            let api = tokio::spawn({
                let (host, stopped) = (host.clone(), stopped.clone());
                async move { host.serve_api(stopped).await.unwrap() }
            });
            // A worker that stops for good leaves the API serving (`/healthz` says why), as
            // the `dev` role does.
            if worker {
                let _ = host.run_worker(stopped).await;
            }
            api.await.unwrap();
        });
    });
    RunningHost {
        base,
        task_queue,
        stop,
        thread: Some(thread),
        data,
    }
}

pub async fn wait_closed(http: &reqwest::Client, base: &str, id: &str, run_id: &str) -> Value {
    wait_closed_within(http, base, id, run_id, Duration::from_secs(60)).await
}

/// Like [`wait_closed`], waiting up to `timeout`.
pub async fn wait_closed_within(
    http: &reqwest::Client,
    base: &str,
    id: &str,
    run_id: &str,
    timeout: Duration,
) -> Value {
    eventually(timeout, || async {
        let url = format!("{base}/api/v1/workflows/user/{id}?run_id={run_id}");
        let body = try_get_json(http, url).await?;
        (body["status"] != "RUNNING").then_some(body)
    })
    .await
    .expect("workflow closes")
}

/// The JSON body of a GET, or `None` when the request or the body fails (a host starting
/// or away).
pub async fn try_get_json(http: &reqwest::Client, url: String) -> Option<Value> {
    http.get(url).send().await.ok()?.json().await.ok()
}

/// Starts a `UserWorkflow` through the API, `None` when it does not answer with ids (a
/// host reconnecting to Temporal answers 503).
pub async fn try_start(
    http: &reqwest::Client,
    base: &str,
    body: &Value,
) -> Option<(String, String)> {
    let res = http
        .post(format!("{base}/api/v1/workflows/user"))
        .json(body)
        .send()
        .await
        .ok()?;
    let v: Value = res.json().await.ok()?;
    Some((
        v["workflow_id"].as_str()?.to_string(),
        v["run_id"].as_str()?.to_string(),
    ))
}

pub async fn start(http: &reqwest::Client, base: &str, body: Value) -> (String, String) {
    let res = http
        .post(format!("{base}/api/v1/workflows/user"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let started: Value = res.json().await.unwrap();
    (
        started["workflow_id"].as_str().unwrap().into(),
        started["run_id"].as_str().unwrap().into(),
    )
}

/// A dev server, a host on it, and an HTTP client, ready for requests. The host stops
/// before the server (fields drop in order).
pub struct Session {
    pub host: RunningHost,
    pub server: DevServer,
    pub http: reqwest::Client,
    pub base: String,
}

impl Session {
    /// Starts both and waits until the API answers.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Like [`Session::start`], with `adjust` applied to the host's configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let server = tokio::task::spawn_blocking(DevServer::start)
            .await
            .unwrap()
            .unwrap();
        let host = start_host_with(&server, adjust);
        let http = http();
        let base = host.base.clone();
        // Ready: Temporal connected, registry loaded, worker polling.
        eventually(Duration::from_secs(60), || async {
            let res = http.get(format!("{base}/readyz")).send().await.ok()?;
            (res.status() == 200).then_some(())
        })
        .await
        .expect("the host gets ready");
        Self {
            host,
            server,
            http,
            base,
        }
    }
}

/// Sends each request and checks it is answered with `status` and
/// `{"error":{"code": code, "message": <not empty>}}`.
pub async fn assert_errors(cases: Vec<(reqwest::RequestBuilder, u16, &str)>) {
    for (request, status, code) in cases {
        let res = request.send().await.unwrap();
        assert_eq!(res.status().as_u16(), status, "{code}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(
            !body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{body}"
        );
    }
}

/// `GET url`, answered with JSON.
/// The body of a GET as text (a /metrics scrape).
pub async fn get_text(http: &reqwest::Client, url: String) -> String {
    http.get(url).send().await.unwrap().text().await.unwrap()
}

pub async fn get_json(http: &reqwest::Client, url: String) -> Value {
    let res = http.get(&url).send().await.unwrap();
    res.json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
}

/// Runs the `activity-host` binary with `args` against the API at `base`.
pub fn cli(base: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_activity-host"))
        .args(args)
        .args(["--api", base])
        .env("RUST_LOG", "error")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap()
}

/// A validator the Makefile installs (`VALIDATORS_BIN`, else the project's `.venv/bin`).
pub fn validator(name: &str) -> std::path::PathBuf {
    let dir = std::env::var_os("VALIDATORS_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| test_support::repo().join(".venv/bin"));
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `make test`, which installs the validators",
        path.display()
    );
    path
}

/// A finished command's stdout, then its stderr, as text (what an assertion shows).
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `cmd` off the async threads and checks that it succeeds; answers its output.
pub async fn run_ok(mut cmd: std::process::Command) -> std::process::Output {
    let (shown, out) = tokio::task::spawn_blocking(move || {
        let out = cmd.output().unwrap();
        (format!("{cmd:?}"), out)
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{shown}: {}", output_text(&out));
    out
}

/// `activity-host deploy FILE --name NAME --output json` against `base`, which must succeed.
pub async fn deploy_file(base: &str, file: &std::path::Path, name: &str) -> Value {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_activity-host"));
    cmd.arg("deploy")
        .arg(file)
        .args(["--name", name, "--output", "json", "--api", base])
        .env("RUST_LOG", "error");
    serde_json::from_slice(&run_ok(cmd).await.stdout).unwrap()
}

/// `POST {base}/api/v1/activities/{name}/invoke` with `body` (the arguments, or the object
/// form), which must complete; answers the result.
pub async fn invoke_ok(http: &reqwest::Client, base: &str, name: &str, body: Value) -> Value {
    let answer: Value = http
        .post(format!("{base}/api/v1/activities/{name}/invoke"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["status"], "COMPLETED", "{name}: {answer}");
    answer["result"].clone()
}

/// A host with its API and no Temporal behind it (deploys, the document, the docs page need
/// none), once its API answers.
pub async fn api_only(adjust: impl FnOnce(&mut Config)) -> (RunningHost, reqwest::Client) {
    let host = start_host_at("127.0.0.1:1", adjust, false);
    let http = http();
    let base = host.base.clone();
    eventually(Duration::from_secs(60), || async {
        // Not a guarded route: the host may require a token.
        let res = http.get(format!("{base}/healthz")).send().await.ok()?;
        (res.status() == 200).then_some(())
    })
    .await
    .expect("the API answers");
    (host, http)
}
