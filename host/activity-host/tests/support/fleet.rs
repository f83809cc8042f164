//! Host processes of a fleet sharing one PostgreSQL registry.

use std::time::Duration;

use test_support::{eventually, Postgres};

/// An `activity-host` process, killed (SIGKILL) when dropped.
pub struct HostProcess {
    pub child: std::process::Child,
    /// Its API (or, for a worker, its health and metrics endpoints).
    pub base: String,
    data: tempfile::TempDir,
}

impl HostProcess {
    /// Everything it wrote to stdout and stderr so far (its log, at the `RUST_LOG` given in
    /// its environment, `error` by default).
    pub fn logs(&self) -> String {
        ["stdout.log", "stderr.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.data.path().join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `kill -9`, and waits for it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `activity-host ROLE` as a process of its own on `pg` and the task queue `queue`, with a
/// data directory of its own; with `reference`, it deploys the reference activities at
/// start. Only notifications deliver deploys in time: the periodic reconcile is 10 min.
pub fn host_process(
    role: &str,
    reference: bool,
    pg: &Postgres,
    temporal: &str,
    queue: &str,
) -> HostProcess {
    host_process_with(role, reference, pg, temporal, queue, &[])
}

/// [`host_process`] with more environment variables (settings) of its own.
pub fn host_process_with(
    role: &str,
    reference: bool,
    pg: &Postgres,
    temporal: &str,
    queue: &str,
    env: &[(&str, &str)],
) -> HostProcess {
    let data = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", test_support::free_port());
    let components = std::path::Path::new(test_components::VALIDATE_USER)
        .parent()
        .unwrap()
        .to_path_buf();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_activity-host"))
        .arg(role)
        .env("ACTIVITY_HOST_WORKFLOW__TEMPORAL__ADDRESS", temporal)
        .env("ACTIVITY_HOST_WORKFLOW__TEMPORAL__TASK_QUEUE", queue)
        .env("ACTIVITY_HOST_DATA_DIR", data.path())
        .env("ACTIVITY_HOST_API__LISTEN", &listen)
        .env("ACTIVITY_HOST_REGISTRY__BACKEND", "postgres")
        .env("ACTIVITY_HOST_REGISTRY__POSTGRES_URL", pg.url())
        .env("ACTIVITY_HOST_REGISTRY__POSTGRES_POOL_SIZE", "4")
        .env("ACTIVITY_HOST_REGISTRY__RECONCILE_MS", "600000")
        .env("ACTIVITY_HOST_ACTIVITIES__COMPONENTS_DIR", components)
        // An activity on a killed host is retried after this, not after the default 30 s.
        .env(
            "ACTIVITY_HOST_WORKER__USER_WORKFLOW__START_TO_CLOSE_MS",
            "5000",
        )
        .env(
            "ACTIVITY_HOST_ACTIVITIES__DEPLOY_REFERENCE",
            if reference { "true" } else { "false" },
        )
        .env("RUST_LOG", "error")
        .envs(env.iter().copied())
        .stdout(std::fs::File::create(data.path().join("stdout.log")).unwrap())
        .stderr(std::fs::File::create(data.path().join("stderr.log")).unwrap())
        .spawn()
        .expect("activity-host");
    HostProcess {
        child,
        base: format!("http://{listen}"),
        data,
    }
}

pub async fn wait_healthy(http: &reqwest::Client, base: &str) {
    let up = eventually(Duration::from_secs(60), || async {
        let res = http.get(format!("{base}/readyz")).send().await.ok()?;
        res.status().is_success().then_some(())
    })
    .await;
    assert!(up.is_some(), "{base} never became ready");
}
