//! The WIT contract is language-neutral: ValidateUser written in Python (componentize-py)
//! is built, deployed in place of the Rust one, and runs inside the reference UserWorkflow.

mod support;

use std::path::Path;

use serde_json::json;
use support::{deploy_file, get_text, run_ok, start, validator, wait_closed, Session};

#[tokio::test(flavor = "multi_thread")]
async fn a_python_activity_runs_inside_user_workflow() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("validate_user_py.wasm");
    let mut build = std::process::Command::new(validator("componentize-py"));
    build
        .arg("-d")
        .arg(repo.join("wit"))
        .args(["-w", "validate-user", "componentize", "app", "-o"])
        .arg(&wasm)
        .current_dir(repo.join("activities-wasm/python/validate-user"));
    run_ok(build).await;

    let session = Session::start().await;
    let (http, base) = (session.http.clone(), session.base.clone());
    let version = deploy_file(&base, &wasm, "ValidateUser").await;

    // A valid user goes through the Python validator and the Rust CreateUser.
    let (id, run) = start(
        &http,
        &base,
        json!({"user_id": "py-1", "email": "py@example.com", "name": "Py", "action": "create"}),
    )
    .await;
    let done = wait_closed(&http, &base, &id, &run).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    // An invalid one fails with the Python validator's own words.
    let (id, run) = start(
        &http,
        &base,
        json!({"user_id": "py-2", "email": "two@@example.com", "name": "Py", "action": "create"}),
    )
    .await;
    let failed = wait_closed(&http, &base, &id, &run).await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(
        failed["error"]["details"][0], "email: must contain exactly one '@'",
        "{failed}"
    );
    // The metrics say which code ran.
    let metrics = get_text(&http, format!("{base}/metrics")).await;
    let digest = version["version"]["digest"].as_str().unwrap();
    assert!(
        metrics.contains(&format!(
            r#"activity_type="ValidateUser",version="{digest}",outcome="completed""#
        )),
        "{metrics}"
    );
}
