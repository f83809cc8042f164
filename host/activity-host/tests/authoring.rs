//! The authoring path: `activity-host new` scaffolds a crate, plain cargo builds it for
//! wasm32-wasip2, `activity-host deploy` ships it to a running host, and it runs through
//! the REST API and through `temporal activity execute`.

use crate::support;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use support::{deploy_file, run_ok, Session};

/// The toolchain the repository pins (rust-toolchain.toml), which has the wasm target.
fn toolchain() -> String {
    let text = std::fs::read_to_string(test_support::repo().join("rust-toolchain.toml")).unwrap();
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
    cargo_build(&crate_dir, &target).await;
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

/// Lines `activity-host watch` printed so far.
fn printed(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// Waits until the watcher's output has a line containing `needle`, answering that line.
async fn wait_for_line(log: &Path, needle: &str, after: usize) -> String {
    test_support::eventually(std::time::Duration::from_secs(300), || async {
        printed(log)
            .lines()
            .skip(after)
            .find(|l| l.contains(needle))
            .map(str::to_string)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "no line with {needle:?}; watcher printed:\n{}",
            printed(log)
        )
    })
}

/// The digest the host has active for `name`.
async fn active_digest(session: &Session, name: &str) -> String {
    let shown = support::get_json(
        &session.http,
        format!("{}/api/v1/activities/{name}", session.base),
    )
    .await;
    shown["active_digest"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_watch_loop_serves_every_save_and_keeps_the_running_version_on_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("watch-greeter");
    let mut new = std::process::Command::new(env!("CARGO_BIN_EXE_activity-host"));
    new.args(["new", "WatchGreeter", "--dir"]).arg(&crate_dir);
    run_ok(new).await;
    let session = Session::start().await;

    let log = dir.path().join("watch.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut watcher = std::process::Command::new(env!("CARGO_BIN_EXE_activity-host"));
    let mut watcher = support::without_cargo_test_env(&mut watcher)
        .arg("watch")
        .arg(&crate_dir)
        .args(["--name", "WatchGreeter", "--input", r#"{"name":"Ann"}"#])
        .args(["--api", &session.base])
        .env("RUSTUP_TOOLCHAIN", toolchain())
        .env("CARGO_TARGET_DIR", guest_target_dir())
        .env("RUST_LOG", "error")
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();

    // The first round: built, deployed, called.
    let first = wait_for_line(&log, "WatchGreeter now serves", 0).await;
    wait_for_line(&log, "Hello, Ann!", 0).await;
    let v1 = active_digest(&session, "WatchGreeter").await;
    assert!(first.contains(&v1), "{first} / {v1}");

    // A save: the next call runs the new code.
    let lib = crate_dir.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    let seen = printed(&log).lines().count();
    let saved = std::time::Instant::now();
    std::fs::write(&lib, source.replace("Hello, {name}!", "Howdy, {name}!")).unwrap();
    let served = wait_for_line(&log, "Howdy, Ann!", seen).await;
    eprintln!(
        "save to serving (watch loop): {} ms; {served}",
        saved.elapsed().as_millis()
    );
    // One save, one rebuild: the build's own reads and writes do not trigger another.
    let rebuilds = printed(&log)
        .lines()
        .skip(seen)
        .filter(|l| l.starts_with("change seen"))
        .count();
    assert_eq!(rebuilds, 1, "{}", printed(&log));
    let v2 = active_digest(&session, "WatchGreeter").await;
    assert_ne!(v1, v2);
    assert!(served.contains(&v2), "{served}");

    // A broken save: the build fails, the running version stays and still answers.
    let seen = printed(&log).lines().count();
    std::fs::write(&lib, format!("this is not rust\n{source}")).unwrap();
    wait_for_line(&log, "build failed; WatchGreeter keeps serving", seen).await;
    assert_eq!(active_digest(&session, "WatchGreeter").await, v2);
    let answer = invoke_result(&session, "WatchGreeter", json!([{"name": "Bo"}])).await;
    assert_eq!(answer["text"], "Howdy, Bo!", "{answer}");
    let _ = watcher.kill();
    let _ = watcher.wait();
}

/// `cargo build --release --target wasm32-wasip2` in `dir`, into `target`, with the
/// toolchain the repository pins.
async fn cargo_build(dir: &Path, target: &Path) {
    let mut build = std::process::Command::new("cargo");
    support::without_cargo_test_env(&mut build)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .current_dir(dir)
        .env("RUSTUP_TOOLCHAIN", toolchain())
        .env("CARGO_TARGET_DIR", target);
    run_ok(build).await;
}

/// `cargo component build --release` in `dir`, into `target` (it writes the component to
/// `<target>/wasm32-wasip1/release`).
async fn cargo_component_build(dir: &Path, target: &Path, package: Option<&str>) {
    let mut build = std::process::Command::new("cargo");
    support::without_cargo_test_env(&mut build)
        .args(["component", "build", "--release"])
        .args(package.map(|p| vec!["-p", p]).unwrap_or_default())
        .current_dir(dir)
        .env("RUSTUP_TOOLCHAIN", toolchain())
        .env("CARGO_TARGET_DIR", target);
    run_ok(build).await;
}

/// Invokes `name` with `args` through the session's API and answers the result.
async fn invoke_result(session: &Session, name: &str, args: Value) -> Value {
    support::invoke_ok(&session.http, &session.base, name, args).await
}

#[tokio::test(flavor = "multi_thread")]
async fn cargo_component_builds_the_scaffold_with_every_capability_and_a_reference_activity() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("component-greeter");
    let mut new = std::process::Command::new(env!("CARGO_BIN_EXE_activity-host"));
    new.args(["new", "ComponentGreeter", "--dir"])
        .arg(&crate_dir);
    run_ok(new).await;
    // The world adds key-value, config and outgoing HTTP, which pull in the rest of WASI.
    let world = crate_dir.join("wit/world.wit");
    let text = std::fs::read_to_string(&world).unwrap();
    let text = text.replace(
        "    import wasi:logging/logging@0.1.0-draft;\n",
        "    import wasi:logging/logging@0.1.0-draft;\n    \
         import wasi:keyvalue/store@0.2.0-draft;\n    \
         import wasi:config/store@0.2.0-rc.1;\n    \
         import wasi:http/outgoing-handler@0.2.12;\n",
    );
    std::fs::write(&world, text).unwrap();

    let target = guest_target_dir();
    let component_target = target.join("cargo-component");
    cargo_component_build(&crate_dir, &component_target, None).await;
    cargo_build(&crate_dir, &target).await;
    let by_component = component_target.join("wasm32-wasip1/release/component_greeter.wasm");
    let by_cargo = target.join("wasm32-wasip2/release/component_greeter.wasm");

    // A reference activity, built by cargo-component from its own crate.
    let guests = test_support::repo().join("activities-wasm");
    cargo_component_build(&guests, &component_target, Some("validate-user")).await;
    let validate = component_target.join("wasm32-wasip1/release/validate_user.wasm");

    let session = Session::start().await;
    let base = session.base.clone();
    for (file, name) in [
        (&by_component, "GreeterByComponent"),
        (&by_cargo, "GreeterByCargo"),
    ] {
        let mut check = std::process::Command::new(env!("CARGO_BIN_EXE_activity-host"));
        check
            .arg("check")
            .arg(file)
            .args([
                "--name",
                name,
                "--kv-store",
                "greetings",
                "--allow-host",
                "example.com",
            ])
            .env("ACTIVITY_HOST_DATA_DIR", dir.path().join("check"));
        let out = run_ok(check).await;
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("fits as"),
            "{out:?}"
        );
        let mut deploy = std::process::Command::new(env!("CARGO_BIN_EXE_activity-host"));
        deploy
            .arg("deploy")
            .arg(file)
            .args(["--name", name, "--export", "component-greeter"])
            .args(["--kv-store", "greetings", "--allow-host", "example.com"])
            .args(["--api", &base]);
        run_ok(deploy).await;
    }
    let by_component_answer = invoke_result(
        &session,
        "GreeterByComponent",
        json!([{"name": "Ann", "language": "de"}]),
    )
    .await;
    assert_eq!(by_component_answer["text"], "Hallo, Ann!");
    assert_eq!(
        by_component_answer,
        invoke_result(
            &session,
            "GreeterByCargo",
            json!([{"name": "Ann", "language": "de"}])
        )
        .await
    );

    deploy_file(&base, &validate, "ValidateUserByComponent").await;
    let user = json!([{"user_id": "cc-1", "email": "two@@example.com", "name": "Cc"}]);
    let by_component = invoke_result(&session, "ValidateUserByComponent", user.clone()).await;
    assert_eq!(by_component["valid"], false);
    assert_eq!(
        by_component,
        invoke_result(&session, "ValidateUser", user).await
    );
}
