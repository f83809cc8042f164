//! The authoring path: `activity-host new` scaffolds a crate, plain cargo builds it for
//! wasm32-wasip2, `activity-host deploy` ships it to a running host, and it runs through
//! the REST API and through `temporal activity execute`.

mod support;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use support::{deploy_file, run_ok, Session};

/// The toolchain the repository pins (rust-toolchain.toml), which has the wasm target.
fn toolchain() -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rust-toolchain.toml"),
    )
    .unwrap();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("channel"))
        .and_then(|l| l.split('"').nth(1))
        .unwrap()
        .to_string()
}

/// The guests' target directory: its compiled dependencies (wit-bindgen) are reused.
fn guest_target_dir() -> PathBuf {
    Path::new(test_components::VALIDATE_USER)
        .ancestors()
        .nth(3)
        .unwrap()
        .to_path_buf()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_activity_builds_deploys_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("greet-user");
    let mut new = std::process::Command::new(env!("CARGO_BIN_EXE_activity-host"));
    new.args(["new", "GreetUser", "--dir"]).arg(&crate_dir);
    run_ok(new).await;

    let target = guest_target_dir();
    let mut build = std::process::Command::new("cargo");
    build
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .current_dir(&crate_dir)
        .env("RUSTUP_TOOLCHAIN", toolchain())
        .env("CARGO_TARGET_DIR", &target);
    run_ok(build).await;
    let wasm = target.join("wasm32-wasip2/release/greet_user.wasm");
    assert!(wasm.exists());

    let session = Session::start().await;
    let base = session.base.clone();
    deploy_file(&base, &wasm, "GreetUser").await;

    let invoke = |body: Value| {
        session
            .http
            .post(format!("{base}/api/v1/activities/GreetUser/invoke"))
            .json(&body)
            .send()
    };
    let greeted: Value = invoke(json!([{"name": "Ann", "language": "fr"}]))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(greeted["status"], "COMPLETED", "{greeted}");
    assert_eq!(
        greeted["result"],
        json!({"text": "Bonjour, Ann !", "attempt": 1})
    );
    let refused: Value = invoke(json!([{"name": " "}]))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(refused["status"], "FAILED", "{refused}");
    assert_eq!(refused["error"]["type"], "InvalidName");
    assert_eq!(refused["error"]["non_retryable"], true);

    let queue = session.host.task_queue.clone();
    let server = &session.server;
    let out = tokio::task::block_in_place(|| {
        server.cli(&[
            "activity",
            "execute",
            "--type",
            "GreetUser",
            "--task-queue",
            &queue,
            "--activity-id",
            "greet-cli-1",
            "--start-to-close-timeout",
            "10s",
            "--input",
            r#"{"name":"Bo"}"#,
            "-o",
            "json",
        ])
    })
    .unwrap();
    let cli_result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli_result["result"]["text"], "Hello, Bo!", "{cli_result}");
}
