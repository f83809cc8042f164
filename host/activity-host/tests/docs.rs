//! docs/authoring.md, run as a reader would: every `sh` block in order, in one shell, from
//! a checkout (`make install` first, then scaffold, both builds, check, deploy, invoke, the
//! temporal CLI, the other languages), against a real host and dev server. A block marked
//! `sh until-ctrl-c` runs in the background until it prints the text of its `# until:`
//! comment, then gets Ctrl-C.

use crate::support;

use std::path::PathBuf;

use support::docs::blocks;
use support::Session;

/// The shell script that runs the document's blocks in order: the first `sh` block in the
/// directory the script starts in (the repository), the others in `$DOCS_SCRATCH`, without
/// the repository's `CARGO_TARGET_DIR`.
fn script(markdown: &str) -> String {
    let mut script = String::from("set -euo pipefail\n");
    let mut first = true;
    for (i, block) in blocks(markdown).iter().enumerate() {
        match block.info.as_str() {
            "sh" => {
                script.push_str(&format!("echo \"--- block {i} at ${{SECONDS}}s\"\n"));
                script.push_str(&block.text);
                if std::mem::take(&mut first) {
                    script.push_str("cd \"$DOCS_SCRATCH\"\nunset CARGO_TARGET_DIR\n");
                }
            }
            "sh until-ctrl-c" => {
                let until = block
                    .text
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("# until:"))
                    .expect("an until-ctrl-c block says what to wait for")
                    .trim()
                    .replace('\'', r"'\''");
                let command: Vec<&str> = block
                    .text
                    .lines()
                    .filter(|l| !l.trim().is_empty() && !l.trim().starts_with('#'))
                    .collect();
                script.push_str(&format!(
                    "echo '--- block {i} (until Ctrl-C)'\n\
                     log=$(mktemp)\n\
                     {command} >\"$log\" 2>&1 &\n\
                     pid=$!\n\
                     for _ in $(seq 1 1200); do grep -qF -- '{until}' \"$log\" && break; kill -0 $pid 2>/dev/null || break; sleep 0.5; done\n\
                     cat \"$log\"\n\
                     grep -qF -- '{until}' \"$log\" || {{ echo 'never printed: {until}'; exit 1; }}\n\
                     kill -INT $pid\n\
                     wait $pid\n",
                    command = command.join("\n")
                ));
            }
            _ => {}
        }
    }
    script
}

fn repo() -> PathBuf {
    test_support::repo().canonicalize().unwrap()
}

/// The target directory this test was built in (`<target>/debug/deps/docs-...`).
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .ancestors()
        .nth(3)
        .unwrap()
        .to_path_buf()
}

#[test]
fn the_script_runs_sh_blocks_and_waits_for_until_blocks() {
    let md = "text\n```sh\necho a\n```\n```rust\nfn x() {}\n```\n```sh until-ctrl-c\nloop --x\n# until: ready'now\n```\n";
    let s = script(md);
    assert!(s.contains("echo a\ncd \"$DOCS_SCRATCH\"\n"), "{s}");
    assert!(!s.contains("fn x"));
    assert!(s.contains("loop --x >\"$log\" 2>&1 &"), "{s}");
    assert!(s.contains(r"grep -qF -- 'ready'\''now'"), "{s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_authoring_guide_runs_as_written() {
    let repo = repo();
    let markdown = std::fs::read_to_string(repo.join("docs/authoring.md")).unwrap();
    let session = Session::start_with(|c| {
        c.workflow.temporal.task_queue = "user-task-queue".into();
    })
    .await;
    // The OCI section pushes to a registry and promotes to a second ("production") host.
    let registry = tokio::task::spawn_blocking(|| test_support::OciRegistry::start(None))
        .await
        .unwrap()
        .expect("docker-registry");
    let production = support::start_host_at(&session.server.address, |_| {}, false);
    test_support::eventually(std::time::Duration::from_secs(60), || async {
        let url = format!("{}/api/v1/activities", production.base);
        let res = session.http.get(url).send().await.ok()?;
        (res.status() == 200).then_some(())
    })
    .await
    .expect("the production host answers");

    // `make install` runs in this checkout, with its build directory (warm); the rest in a
    // scratch directory that stands for the checkout's root (links to what
    // `cd ../activities-wasm/...` reaches), so the scaffold is not written into the
    // repository; only the other languages' outputs (git-ignored) are.
    let work = tempfile::tempdir().unwrap();
    let scratch = work.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    for entry in ["wit", "activities-wasm", ".venv", "rust-toolchain.toml"] {
        std::os::unix::fs::symlink(repo.join(entry), scratch.join(entry)).unwrap();
    }
    let prefix = work.path().join("prefix");
    let cargo_bin = cargo_dir();
    let path = format!(
        "{}:{}:{}:{}",
        prefix.join("bin").display(),
        repo.join(".venv/bin").display(),
        cargo_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script_path = work.path().join("authoring.sh");
    std::fs::write(&script_path, script(&markdown)).unwrap();
    let mut run = std::process::Command::new("bash");
    support::without_cargo_test_env(&mut run)
        .arg(&script_path)
        .current_dir(&repo)
        .env("DOCS_SCRATCH", &scratch)
        .env("CARGO_TARGET_DIR", target_dir())
        .env("PATH", path)
        .env("PREFIX", &prefix)
        .env("DEBUG_INSTALL", "1")
        .env("ACTIVITY_HOST_API", &session.base)
        .env("REGISTRY", registry.host())
        .env("PRODUCTION_API", &production.base)
        .env("DOCKER_CONFIG", work.path().join("no-docker-config"))
        .env("TEMPORAL_ADDRESS", &session.server.address)
        .env("RUST_LOG", "error")
        .env_remove("ACTIVITY_HOST_CONFIG");
    let out = tokio::task::spawn_blocking(move || run.output().unwrap())
        .await
        .unwrap();
    let text = support::output_text(&out);
    assert!(out.status.success(), "docs/authoring.md failed:\n{text}");
    assert!(prefix.join("bin/activity-host").exists(), "{text}");
    // What the guide deployed is served.
    let listed =
        support::get_json(&session.http, format!("{}/api/v1/activities", session.base)).await;
    for name in ["GreetUser", "ValidateUserPy", "ValidateUserJs"] {
        assert!(
            listed.as_array().unwrap().iter().any(|a| a["name"] == name),
            "{name} not deployed: {listed}\n{text}"
        );
    }
    // Production serves the artifact staging serves, recorded with its reference.
    let shown = |base: String| {
        let http = session.http.clone();
        async move { support::get_json(&http, format!("{base}/api/v1/activities/GreetUser")).await }
    };
    let (staging, prod) = (
        shown(session.base.clone()).await,
        shown(production.base.clone()).await,
    );
    let active = |v: &serde_json::Value| {
        v["versions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["active"] == true)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        active(&prod)["digest"],
        active(&staging)["digest"],
        "{prod}\n{staging}"
    );
    let source = &active(&prod)["source"];
    assert!(
        source["reference"].as_str().unwrap().starts_with(&format!(
            "oci://{}/team/greet-user@sha256:",
            registry.host()
        )),
        "{prod}"
    );
    assert_eq!(source, &active(&staging)["source"], "{prod}\n{staging}");
}

/// The directory of the cargo this test's PATH finds, for the guide's PATH (rustup's proxies live
/// there whatever `CARGO_HOME` says, so it is looked up, not assumed), else the one running it.
fn cargo_dir() -> PathBuf {
    let found = which::which("cargo")
        .ok()
        .or_else(|| std::env::var_os("CARGO").map(PathBuf::from))
        .filter(|cargo| cargo.exists())
        .expect("cargo is on PATH or named by CARGO");
    found.parent().unwrap().to_path_buf()
}
