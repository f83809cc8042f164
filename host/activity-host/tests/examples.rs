//! examples/go and examples/java: the seed's service in Go and in Java (its layout: a
//! Temporal worker registers `UserWorkflow`), whose activities are the host's, called
//! through the stubs the host generates. Each is built with its own toolchain (Go; Maven and
//! the JDK) and run against a dev server and a host: create, a typed Conflict for another
//! user under the same id, update, delete.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::Value;
use support::{get_text, run_ok, Session};

fn example(lang: &str) -> PathBuf {
    test_support::repo().join("examples").join(lang)
}

/// `go ARGS` in `dir`, with the Go module cache the Makefile fills (outside the clone).
fn go(dir: &Path, args: &[&str]) -> Command {
    let cache = std::env::var_os("GO_CACHE_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/activity-host/go")
        });
    let mut cmd = Command::new("go");
    support::without_cargo_test_env(&mut cmd)
        .args(args)
        .env("GOPATH", cache)
        .env("GOFLAGS", "-modcacherw")
        .env("GOTOOLCHAIN", "local")
        .current_dir(dir);
    cmd
}

/// `mvn ARGS` in `dir`, with the local repository the Makefile fills (outside the clone).
fn mvn(dir: &Path, args: &[&str]) -> Command {
    let repository = std::env::var_os("MAVEN_REPO")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/activity-host/m2")
        });
    let mut cmd = Command::new("mvn");
    support::without_cargo_test_env(&mut cmd)
        .args(["-B", "-q", "--no-transfer-progress"])
        .arg(format!("-Dmaven.repo.local={}", repository.display()))
        .args(args)
        .current_dir(dir);
    cmd
}

/// A child process killed when dropped.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How an example's programs are started: the command before the program's flags, and the
/// flags' dash (`-address` in Go, `--address` in Java).
#[derive(Clone)]
struct Programs {
    worker: Vec<String>,
    starter: Vec<String>,
    dash: &'static str,
}

impl Programs {
    fn command(&self, program: &[String], flags: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(&program[0]);
        cmd.args(&program[1..]);
        for (name, value) in flags {
            cmd.arg(format!("{}{name}", self.dash)).arg(value);
        }
        cmd
    }
}

/// The seed's steps through an example's worker and starter, checked against the host's
/// REST API: create, a typed Conflict, update, delete.
async fn seed_steps(session: &Session, lang: &str, programs: Programs, dir: &Path) {
    let queue = format!("{lang}-user-{}", test_support::free_port());
    let address = session.server.address.clone();
    let log = std::fs::File::create(dir.join("worker.log")).unwrap();
    let _worker = Running(
        programs
            .command(
                &programs.worker,
                &[("address", &address), ("task-queue", &queue)],
            )
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let user = format!("{lang}-1");
    let start = |id: String, email: &'static str, name: &'static str, action: &'static str| {
        let cmd = programs.command(
            &programs.starter,
            &[
                ("address", &address),
                ("task-queue", &queue),
                ("id", &id),
                ("user-id", &user),
                ("email", email),
                ("name", name),
                ("action", action),
            ],
        );
        async move {
            let started = Instant::now();
            let out = run_ok(cmd).await;
            let answer: Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{e}: {}", support::output_text(&out)));
            // Reported, not asserted: the start-to-result time the client measured, and
            // the whole process's (its runtime's start included).
            eprintln!(
                "{lang} {action}: {} ms from start to result, {:?} with the process",
                answer["elapsed_ms"],
                started.elapsed()
            );
            answer
        }
    };
    let email = "user@example.com";
    let created = start(format!("{lang}-create"), email, "First", "create").await;
    assert_eq!(created["result"]["user"]["email"], email, "{created}");
    assert_eq!(
        created["result"]["notification"]["target"], "host-log",
        "{created}"
    );
    let stored = support::get_json(
        &session.http,
        format!("{}/api/v1/users/{user}", session.base),
    )
    .await;
    assert_eq!(stored["name"], "First", "{stored}");

    // Another user under the same id: CreateUser's typed Conflict, read by the workflow
    // from the typed failure and its details.
    let taken = start(
        format!("{lang}-create-2"),
        "other@example.com",
        "Other",
        "create",
    )
    .await;
    assert_eq!(taken["error"]["type"], "Conflict", "{taken}");
    assert!(
        taken["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("taken by {email}")),
        "{taken}"
    );

    let updated = start(format!("{lang}-update"), email, "Second", "update").await;
    assert_eq!(updated["result"]["user"]["name"], "Second", "{updated}");
    assert_eq!(updated["result"]["user"]["version"], 2, "{updated}");

    let deleted = start(format!("{lang}-delete"), email, "Second", "delete").await;
    assert_eq!(deleted["result"]["deleted"], true, "{deleted}");
    let gone = session
        .http
        .get(format!("{}/api/v1/users/{user}", session.base))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

/// A session whose host serves the seed's task queue, and the check that `committed` is
/// what the host generates at `route` now (rewritten with UPDATE_STUBS=1).
async fn session_with_current_stubs(route: &str, committed: &Path) -> Session {
    let session = Session::start_with(|c| {
        c.workflow.temporal.task_queue = "user-task-queue".into();
    })
    .await;
    let generated = get_text(&session.http, format!("{}{route}", session.base)).await;
    if std::env::var_os("UPDATE_STUBS").is_some() {
        std::fs::create_dir_all(committed.parent().unwrap()).unwrap();
        std::fs::write(committed, &generated).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(committed).unwrap_or_default(),
        generated,
        "{} is stale: run with UPDATE_STUBS=1",
        committed.display()
    );
    session
}

#[tokio::test(flavor = "multi_thread")]
async fn the_go_example_runs_the_seeds_workflow_on_hosted_activities() {
    let session = session_with_current_stubs(
        "/api/v1/codegen/go",
        &example("go").join("internal/activities/stubs.go"),
    )
    .await;
    let bin = tempfile::tempdir().unwrap();
    for (name, package) in [
        ("worker", "./cmd/temporal-worker"),
        ("starter", "./cmd/starter"),
    ] {
        let out = bin.path().join(name).display().to_string();
        run_ok(go(&example("go"), &["build", "-o", &out, package])).await;
    }
    let programs = Programs {
        worker: vec![bin.path().join("worker").display().to_string()],
        starter: vec![bin.path().join("starter").display().to_string()],
        dash: "-",
    };
    seed_steps(&session, "go", programs.clone(), bin.path()).await;

    // The same starter against the host's own task queue starts the native UserWorkflow
    // (same type name, same input): the baseline the Go and Java workflows are read against.
    let native = programs.command(
        &programs.starter,
        &[
            ("address", &session.server.address),
            ("task-queue", &session.host.task_queue),
            ("id", "native-create"),
            ("user-id", "native-1"),
            ("email", "native@example.com"),
            ("name", "Native"),
            ("action", "create"),
        ],
    );
    let out = run_ok(native).await;
    let answer: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", support::output_text(&out)));
    assert!(answer["result"].is_object(), "{answer}");
    eprintln!(
        "native (Rust, in the host) create: {} ms from start to result",
        answer["elapsed_ms"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_java_example_runs_the_seeds_workflow_on_hosted_activities() {
    let stubs = "src/main/java/com/example/userservice/activities/Activities.java";
    let session = session_with_current_stubs(
        "/api/v1/codegen/java?package=com.example.userservice.activities",
        &example("java").join(stubs),
    )
    .await;
    // Built in a copy (Maven writes target/ beside the sources), with javac -Xlint:all -Werror.
    let dir = tempfile::tempdir().unwrap();
    let mut copy = Command::new("cp");
    copy.arg("-r")
        .arg(example("java").join("pom.xml"))
        .arg(example("java").join("src"))
        .arg(dir.path());
    run_ok(copy).await;
    let classpath = dir.path().join("classpath.txt");
    run_ok(mvn(
        dir.path(),
        &[
            "compile",
            "dependency:build-classpath",
            &format!("-Dmdep.outputFile={}", classpath.display()),
        ],
    ))
    .await;
    let classpath = format!(
        "{}:{}",
        dir.path().join("target/classes").display(),
        std::fs::read_to_string(&classpath).unwrap().trim()
    );
    let java = |class: &str| {
        ["java", "-cp", &classpath, class]
            .map(String::from)
            .to_vec()
    };
    let programs = Programs {
        worker: java("com.example.userservice.TemporalWorker"),
        starter: java("com.example.userservice.Starter"),
        dash: "--",
    };
    seed_steps(&session, "java", programs, dir.path()).await;
}
