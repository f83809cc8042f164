//! The client commands a user types: workflow start/show/list/cancel, invoke, config show,
//! completions and help, against a host on the real dev server.

use crate::support;

use std::time::Duration;

use serde_json::Value;
use support::{cli, Session};
use test_support::eventually;

fn out(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn workflow_and_invoke_commands_work_like_the_api() {
    let session = Session::start().await;
    let base = session.base.clone();
    let run = |args: Vec<&'static str>| {
        let b = base.clone();
        tokio::task::spawn_blocking(move || cli(&b, &args))
    };

    let o = run(vec![
        "workflow",
        "start",
        "--user-id",
        "k1",
        "--email",
        "k1@example.com",
        "--name",
        "K",
        "--action",
        "create",
        "--wait",
        "--output",
        "json",
    ])
    .await
    .unwrap();
    assert!(o.status.success(), "{}", out(&o));
    let done: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["result"]["user"]["user_id"], "k1");

    let o = run(vec!["workflow", "show", "user-k1-create"])
        .await
        .unwrap();
    assert!(out(&o).contains("COMPLETED"), "{}", out(&o));

    let listed = eventually(Duration::from_secs(60), || async {
        let o = run(vec![
            "workflow",
            "list",
            "--user-id",
            "k1",
            "--output",
            "json",
        ])
        .await
        .unwrap();
        let v: Value = serde_json::from_slice(&o.stdout).ok()?;
        (v["workflows"].as_array()?.len() == 1).then_some(v)
    })
    .await
    .expect("the run is listed");
    assert_eq!(listed["workflows"][0]["workflow_id"], "user-k1-create");

    // A closed run cannot be cancelled: one line, non-zero exit.
    let o = run(vec!["workflow", "cancel", "user-k1-create"])
        .await
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with("error: workflow_not_running"), "{err}");

    let o = run(vec![
        "invoke",
        "ValidateUser",
        "--input",
        r#"{"user_id":"k2","email":"k2@example.com","name":"K"}"#,
    ])
    .await
    .unwrap();
    assert!(o.status.success(), "{}", out(&o));
    let result: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(result["valid"], true, "{result}");

    let o = run(vec![
        "invoke",
        "UpdateUser",
        "--input",
        r#"{"user_id":"nobody","email":"n@example.com","name":"N"}"#,
    ])
    .await
    .unwrap();
    assert!(!o.status.success());
    assert!(out(&o).contains("does not exist"), "{}", out(&o));

    let o = run(vec!["invoke", "NotDeployed", "--input", "1"])
        .await
        .unwrap();
    assert!(!o.status.success());
    assert!(out(&o).contains("activity_not_found"), "{}", out(&o));
    let o = run(vec!["invoke", "ValidateUser", "--input", "{not json"])
        .await
        .unwrap();
    assert!(!o.status.success());
    assert!(out(&o).contains("is not JSON"), "{}", out(&o));
}

#[test]
fn config_show_completions_and_help_need_no_host() {
    let bin = env!("CARGO_BIN_EXE_activity-host");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        std::process::Command::new(bin)
            .args(args)
            .envs(env.iter().copied())
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap()
    };
    let o = run(
        &["config", "show", "--output", "json"],
        &[
            (
                "ACTIVITY_HOST_API__ADMIN_TOKEN",
                "a-secret-token-0123456789",
            ),
            (
                "ACTIVITY_HOST_WORKFLOW__TEMPORAL__TASK_QUEUE",
                "other-queue",
            ),
        ],
    );
    assert!(o.status.success(), "{}", out(&o));
    let shown: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(shown["api"]["admin_token"], "********");
    assert_eq!(shown["workflow"]["temporal"]["task_queue"], "other-queue");
    assert!(!out(&o).contains("a-secret-token"));

    let o = run(
        &["config", "show"],
        &[("ACTIVITY_HOST_API__LISTEN", "0.0.0.0:8080")],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("api.admin_token") && err.trim().lines().count() == 1,
        "{err}"
    );

    for shell in ["bash", "zsh", "fish"] {
        let o = run(&["completions", shell], &[]);
        assert!(o.status.success() && o.stdout.len() > 1000, "{shell}");
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("invoke"),
            "{shell}"
        );
    }
    let o = run(&["--help"], &[]);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(
        help.contains("Examples:") && help.contains("ACTIVITY_HOST_"),
        "{help}"
    );
}
