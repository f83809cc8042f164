//! The WIT contract is language-neutral: ValidateUser written in Python (componentize-py)
//! and in JavaScript (componentize-js, from the npm registry) is built, deployed in place of
//! the Rust one, and runs inside the reference UserWorkflow with the same answers.

use crate::support;

use std::path::{Path, PathBuf};

use serde_json::json;
use support::{deploy_file, get_text, run_ok, start, validator, wait_closed, Session};

fn repo() -> PathBuf {
    test_support::repo()
}

/// `activities-wasm/python/validate-user` built with componentize-py (from the venv).
async fn build_python(out: &Path) {
    let mut build = std::process::Command::new(validator("componentize-py"));
    build
        .arg("-d")
        .arg(repo().join("wit"))
        .args(["-w", "validate-user", "componentize", "app", "-o"])
        .arg(out)
        .current_dir(repo().join("activities-wasm/python/validate-user"));
    run_ok(build).await;
}

/// `activities-wasm/js/validate-user` built with componentize-js, installed by `make test`
/// (`npm ci` in that directory).
async fn build_javascript(out: &Path) {
    let dir = repo().join("activities-wasm/js/validate-user");
    let tool = dir.join("node_modules/.bin/componentize-js");
    assert!(
        tool.exists(),
        "{} is missing: run `make test`, which installs the JavaScript toolchain",
        tool.display()
    );
    let mut build = std::process::Command::new(tool);
    // The WIT directory relative to the crate: componentize-js reads it from the working
    // directory's subtree.
    build
        .args([
            "validate-user.js",
            "--wit",
            "../../../wit",
            "--world-name",
            "validate-user",
        ])
        .args([
            "-d",
            "stdio",
            "random",
            "clocks",
            "http",
            "fetch-event",
            "-o",
        ])
        .arg(out)
        .current_dir(&dir);
    run_ok(build).await;
}

/// Deploys `wasm` as ValidateUser and runs a valid and an invalid user through
/// UserWorkflow; the metrics say that this version ran.
async fn validates_inside_user_workflow(session: &Session, wasm: &Path, lang: &str) {
    let (http, base) = (&session.http, &session.base);
    let version = deploy_file(base, wasm, "ValidateUser").await;
    let size = std::fs::metadata(wasm).unwrap().len();
    eprintln!("{lang}: {} ({size} bytes)", wasm.display());

    let (id, run) = start(
        http,
        base,
        json!({"user_id": format!("{lang}-1"), "email": "poly@example.com", "name": "Poly", "action": "create"}),
    )
    .await;
    let done = wait_closed(http, base, &id, &run).await;
    assert_eq!(done["status"], "COMPLETED", "{lang}: {done}");
    // An invalid user fails with the guest's own words.
    let (id, run) = start(
        http,
        base,
        json!({"user_id": format!("{lang}-2"), "email": "two@@example.com", "name": "Poly", "action": "create"}),
    )
    .await;
    let failed = wait_closed(http, base, &id, &run).await;
    assert_eq!(failed["status"], "FAILED", "{lang}: {failed}");
    assert_eq!(
        failed["error"]["details"][0], "email: must contain exactly one '@'",
        "{lang}: {failed}"
    );
    let metrics = get_text(http, format!("{base}/metrics")).await;
    let digest = version["version"]["digest"].as_str().unwrap();
    assert!(
        metrics.contains(&format!(
            r#"activity_type="ValidateUser",version="{digest}",outcome="completed""#
        )),
        "{lang}: {metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn python_and_javascript_activities_run_inside_user_workflow() {
    let dir = tempfile::tempdir().unwrap();
    let python = dir.path().join("validate_user_py.wasm");
    let javascript = dir.path().join("validate_user_js.wasm");
    build_python(&python).await;
    build_javascript(&javascript).await;
    let session = Session::start().await;
    validates_inside_user_workflow(&session, &python, "python").await;
    validates_inside_user_workflow(&session, &javascript, "javascript").await;
}
