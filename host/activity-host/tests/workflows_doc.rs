//! docs/workflows.md, run as written: its "3. Register" commands (generate the stubs from the
//! host, build, start the worker, run the starter) for examples/go and examples/java, in a
//! scratch copy of the examples, against a dev server and a host.

use crate::support;

use std::path::PathBuf;
use std::process::Command;

use support::Session;

fn cache(name: &str, default: &str) -> String {
    std::env::var_os(name)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(default))
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_workflow_guide_runs_as_written() {
    let session = Session::start().await;
    let scratch = tempfile::tempdir().unwrap();
    let examples = scratch.path().join("examples");
    std::fs::create_dir(&examples).unwrap();
    for lang in ["go", "java"] {
        let mut copy = Command::new("cp");
        copy.arg("-r")
            .arg(test_support::repo().join("examples").join(lang))
            .arg(&examples);
        support::run_ok(copy).await;
    }
    let blocks = support::docs::section_sh_blocks("workflows.md", "3. Register");
    assert_eq!(blocks.len(), 2, "a Go and a Java block: {blocks:?}");
    let env: Vec<(&str, String)> = vec![
        ("TEMPORAL_ADDRESS", session.server.address.clone()),
        ("ACTIVITY_HOST_API", session.base.clone()),
        ("GOPATH", cache("GO_CACHE_ROOT", ".cache/activity-host/go")),
        ("GOFLAGS", "-modcacherw".into()),
        ("GOTOOLCHAIN", "local".into()),
        (
            "MAVEN_OPTS",
            format!(
                "-Dmaven.repo.local={}",
                cache("MAVEN_REPO", ".cache/activity-host/m2")
            ),
        ),
    ];
    for (block, user, email) in [
        (&blocks[0], "demo-go", "ann@example.com"),
        (&blocks[1], "demo-java", "bob@example.com"),
    ] {
        let dir = scratch.path().to_path_buf();
        let block = block.clone();
        let env = env.clone();
        // The block runs for seconds (builds, a worker, a workflow): off the test's runtime.
        let out = tokio::task::spawn_blocking(move || {
            let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            support::docs::run_sh_block(&block, &dir, &pairs)
        })
        .await
        .unwrap();
        let answer = out
            .lines()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("no answer printed:\n{out}"));
        let answer: serde_json::Value = serde_json::from_str(answer).unwrap();
        assert_eq!(answer["result"]["user"]["user_id"], user, "{out}");
        assert_eq!(answer["result"]["user"]["version"], 1, "{out}");
        assert_eq!(
            answer["result"]["notification"]["target"], "host-log",
            "{out}"
        );
        let stored = support::get_json(
            &session.http,
            format!("{}/api/v1/users/{user}", session.base),
        )
        .await;
        assert_eq!(stored["email"], email, "{stored}");
    }
}
