//! Typed calls from another SDK: the Python stubs `activity-host codegen` writes for the
//! deployed reference activities, type-checked by mypy (a caller's type error is caught
//! before anything runs) and used by a real Python SDK workflow that runs ValidateUser ->
//! CreateUser -> SendNotification against the host, and reads CreateUser's typed failure.

use crate::support;

use std::process::Command;

use serde_json::Value;
use support::{get_json, Session};

#[tokio::test(flavor = "multi_thread")]
async fn a_python_workflow_calls_the_host_through_generated_stubs() {
    let session = Session::start().await;
    let (http, base) = (session.http.clone(), session.base.clone());
    let dir = tempfile::tempdir().unwrap();
    let stubs = dir.path().join("activity_stubs.py");
    let out = support::cli(
        &base,
        &[
            "codegen",
            "--lang",
            "python",
            "ValidateUser",
            "CreateUser",
            "SendNotification",
            "-o",
            stubs.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let source = std::fs::read_to_string(&stubs).unwrap();
    assert!(source.contains(&format!("TASK_QUEUE = {:?}", session.host.task_queue)));
    let workflow =
        std::fs::read_to_string(test_support::package_dir().join("tests/python/typed_workflow.py"))
            .unwrap();
    std::fs::write(dir.path().join("typed_workflow.py"), &workflow).unwrap();
    let bin = |tool: &str| support::validator(tool);
    let mypy = |file: &str| {
        Command::new(bin("mypy"))
            .args(["--strict", "--no-incremental", file])
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let checked = mypy("typed_workflow.py");
    assert!(
        checked.status.success(),
        "mypy: {}",
        String::from_utf8_lossy(&checked.stdout)
    );
    // A wrong type in the caller's code is caught by the checker, not at run time.
    let wrong = workflow.replace(
        "\"message\": f\"welcome, version {stored['version']}\"",
        "\"message\": stored[\"version\"]",
    );
    assert_ne!(wrong, workflow, "the line to break is in the workflow");
    std::fs::write(dir.path().join("wrong_workflow.py"), wrong).unwrap();
    let checked = mypy("wrong_workflow.py");
    let text = String::from_utf8_lossy(&checked.stdout);
    assert!(
        !checked.status.success() && text.contains("\"message\""),
        "mypy accepted an int as the message:\n{text}"
    );

    // The workflow itself, on a Python SDK worker, against the host.
    let queue = format!("typed-python-{}", test_support::free_port());
    let run = tokio::task::spawn_blocking({
        let (dir, address) = (dir.path().to_path_buf(), session.server.address.clone());
        move || {
            Command::new(support::validator("python"))
                .args(["typed_workflow.py", &address, &queue, "typed-1"])
                .current_dir(dir)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        run.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let result: Value = serde_json::from_slice(&run.stdout).expect("the result as JSON");
    eprintln!(
        "python: {} ms from start to result (validate, create, notify, a refused create)",
        result["elapsed_ms"]
    );
    assert_eq!(result["stored"]["user_id"], "typed-1", "{result}");
    assert_eq!(result["stored"]["version"], 1, "{result}");
    assert_eq!(result["delivery"]["target"], "host-log", "{result}");
    assert_eq!(
        result["conflict"], "Conflict",
        "the typed failure: {result}"
    );
    let user = get_json(&http, format!("{base}/api/v1/users/typed-1")).await;
    assert_eq!(user["email"], "typed@example.com", "{user}");

    // Bad input: a language not offered, an activity not deployed, an invalid name.
    support::assert_errors(vec![
        (
            http.get(format!("{base}/api/v1/codegen/cobol")),
            400,
            "unknown_language",
        ),
        (
            http.get(format!("{base}/api/v1/codegen/python?name=Nope")),
            404,
            "activity_not_found",
        ),
        (
            http.get(format!("{base}/api/v1/codegen/rust?name=bad%20name")),
            400,
            "invalid_name",
        ),
        (
            http.get(format!("{base}/api/v1/codegen/rust?lang=rust")),
            400,
            "invalid_parameter",
        ),
        // A package only Go and Java take, and only a name they take.
        (
            http.get(format!("{base}/api/v1/codegen/python?package=stubs")),
            400,
            "invalid_parameter",
        ),
        (
            http.get(format!("{base}/api/v1/codegen/java?package=com.new.stubs")),
            400,
            "invalid_parameter",
        ),
        (
            http.get(format!("{base}/api/v1/codegen/go?package=Stubs")),
            400,
            "invalid_parameter",
        ),
    ])
    .await;
    // Every deployed activity when none is named, in each language.
    for lang in ["python", "typescript", "rust", "go", "java"] {
        let res = http
            .get(format!("{base}/api/v1/codegen/{lang}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{lang}");
        let text = res.text().await.unwrap();
        for name in [
            "ValidateUser",
            "CreateUser",
            "UpdateUser",
            "DeleteUser",
            "SendNotification",
        ] {
            assert!(text.contains(name), "{lang} lacks {name}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_typescript_workflow_calls_the_host_through_generated_stubs() {
    let session = Session::start().await;
    let modules = test_support::repo().join("host/codegen/tests/typescript/node_modules");
    assert!(
        modules.join("@temporalio/worker").is_dir(),
        "run `npm ci` in {} (make test does)",
        modules.parent().unwrap().display()
    );
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&modules, dir.path().join("node_modules")).unwrap();
    for file in ["workflows.ts", "run.mjs"] {
        std::fs::copy(
            test_support::package_dir()
                .join("tests/typescript")
                .join(file),
            dir.path().join(file),
        )
        .unwrap();
    }
    let stubs = support::get_text(
        &session.http,
        format!("{}/api/v1/codegen/typescript", session.base),
    )
    .await;
    std::fs::write(dir.path().join("stubs.ts"), stubs).unwrap();
    // Bundled by the SDK's worker (its own TypeScript loader), run on its worker.
    let queue = format!("typed-typescript-{}", test_support::free_port());
    let mut node = Command::new("node");
    support::without_cargo_test_env(&mut node)
        .args(["run.mjs", &session.server.address, &queue, "typed-ts-1"])
        .current_dir(dir.path());
    let run = support::run_ok(node).await;
    let result: Value = serde_json::from_slice(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", support::output_text(&run)));
    eprintln!(
        "typescript: {} ms from start to result (validate, create, notify, a refused create)",
        result["elapsed_ms"]
    );
    assert_eq!(result["valid"], true, "{result}");
    assert_eq!(result["stored"]["user_id"], "typed-ts-1", "{result}");
    assert_eq!(result["stored"]["version"], 1, "{result}");
    assert_eq!(result["delivery"], "host-log", "{result}");
    assert_eq!(
        result["conflict"], "Conflict",
        "the typed failure: {result}"
    );
    let user = get_json(
        &session.http,
        format!("{}/api/v1/users/typed-ts-1", session.base),
    )
    .await;
    assert_eq!(user["email"], "ts@example.com", "{user}");
}
