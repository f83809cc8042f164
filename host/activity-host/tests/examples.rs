//! examples/go: the seed's service in Go (its layout: `cmd/temporal-worker` registers
//! `UserWorkflow` from `internal/application/workflow`), whose activities are the host's,
//! called through the Go stubs the host generates. Built with the Go toolchain and run
//! against a dev server and a host: create, a typed Conflict for another user under the same
//! id, update, delete.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::Value;
use support::{get_text, run_ok, Session};

fn example() -> PathBuf {
    test_support::repo().join("examples/go")
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

/// A child process killed when dropped.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The example's starter: runs UserWorkflow for user `go-1` and answers its JSON.
struct Starter {
    bin: PathBuf,
    address: String,
    queue: String,
}

impl Starter {
    async fn run(&self, id: &str, email: &str, name: &str, action: &str) -> Value {
        let mut cmd = Command::new(&self.bin);
        cmd.args([
            "-address",
            &self.address,
            "-task-queue",
            &self.queue,
            "-id",
            id,
        ])
        .args(["-user-id", "go-1", "-email", email, "-name", name])
        .args(["-action", action]);
        let started = Instant::now();
        let out = run_ok(cmd).await;
        let answer: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", support::output_text(&out)));
        eprintln!("go {action}: {:?}", started.elapsed());
        answer
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_go_example_runs_the_seeds_workflow_on_hosted_activities() {
    let session = Session::start_with(|c| {
        c.workflow.temporal.task_queue = "user-task-queue".into();
    })
    .await;
    // The committed stubs are what the host generates for its activities now.
    let generated = get_text(&session.http, format!("{}/api/v1/codegen/go", session.base)).await;
    let committed = example().join("internal/activities/stubs.go");
    if std::env::var_os("UPDATE_STUBS").is_some() {
        std::fs::write(&committed, &generated).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&committed).unwrap_or_default(),
        generated,
        "examples/go/internal/activities/stubs.go is stale: run with UPDATE_STUBS=1"
    );

    let bin = tempfile::tempdir().unwrap();
    for (name, package) in [
        ("worker", "./cmd/temporal-worker"),
        ("starter", "./cmd/starter"),
    ] {
        let out = bin.path().join(name).display().to_string();
        run_ok(go(&example(), &["build", "-o", &out, package])).await;
    }
    let queue = format!("go-user-{}", test_support::free_port());
    let address = session.server.address.clone();
    let log = std::fs::File::create(bin.path().join("worker.log")).unwrap();
    let _worker = Running(
        Command::new(bin.path().join("worker"))
            .args(["-address", &address, "-task-queue", &queue])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let starter = Starter {
        bin: bin.path().join("starter"),
        address: address.clone(),
        queue: queue.clone(),
    };
    let start = |id, email, name, action| starter.run(id, email, name, action);
    let created = start("go-create", "go@example.com", "Go", "create").await;
    assert_eq!(
        created["result"]["user"]["email"], "go@example.com",
        "{created}"
    );
    assert_eq!(
        created["result"]["notification"]["target"], "host-log",
        "{created}"
    );
    let stored =
        support::get_json(&session.http, format!("{}/api/v1/users/go-1", session.base)).await;
    assert_eq!(stored["name"], "Go", "{stored}");

    // Another user under the same id: CreateUser's typed Conflict, read by the workflow
    // with errors.Is and its details.
    let taken = start("go-create-2", "other@example.com", "Other", "create").await;
    assert_eq!(taken["error"]["type"], "Conflict", "{taken}");
    assert!(
        taken["error"]["message"]
            .as_str()
            .unwrap()
            .contains("taken by go@example.com"),
        "{taken}"
    );

    let updated = start("go-update", "go@example.com", "Gopher", "update").await;
    assert_eq!(updated["result"]["user"]["name"], "Gopher", "{updated}");
    assert_eq!(updated["result"]["user"]["version"], 2, "{updated}");

    let deleted = start("go-delete", "go@example.com", "Gopher", "delete").await;
    assert_eq!(deleted["result"]["deleted"], true, "{deleted}");
    let gone = session
        .http
        .get(format!("{}/api/v1/users/go-1", session.base))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}
