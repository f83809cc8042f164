//! The workers under test, each started as its own process on its own task queue.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context};

/// A kind of worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// activity-host: native workflow, activities as WebAssembly components.
    Host,
    /// activity-host with `UserWorkflow`'s activities in-process (local activities).
    HostLocal,
    /// Plain Temporal Rust SDK worker, activities as Rust functions.
    Rust,
    /// Plain Temporal Python SDK worker, activities as Python functions.
    Python,
}

impl Kind {
    /// Name in tables and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Host => "activity-host (wasm)",
            Kind::HostLocal => "activity-host (wasm, in-process)",
            Kind::Rust => "Rust SDK worker",
            Kind::Python => "Python SDK worker",
        }
    }

    /// Short name, for task queues and ids.
    pub fn slug(self) -> &'static str {
        match self {
            Kind::Host => "host",
            Kind::HostLocal => "host-local",
            Kind::Rust => "rust",
            Kind::Python => "python",
        }
    }

    /// Where `UserWorkflow` runs its activities for this worker's load.
    pub fn activity_mode(self) -> activity_worker::ActivityMode {
        match self {
            Kind::HostLocal => activity_worker::ActivityMode::Local,
            _ => activity_worker::ActivityMode::Remote,
        }
    }

    /// Parses a short name.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "host" => Kind::Host,
            "host-local" => Kind::HostLocal,
            "rust" => Kind::Rust,
            "python" => Kind::Python,
            other => bail!("unknown worker {other:?}: expected host, host-local, rust or python"),
        })
    }
}

/// Where the worker programs are.
#[derive(Debug, Clone)]
pub struct Programs {
    /// The activity-host binary.
    pub host: PathBuf,
    /// The native Rust peer.
    pub rust: PathBuf,
    /// The Python interpreter with `temporalio` installed.
    pub python: PathBuf,
    /// The Python peer's script.
    pub python_worker: PathBuf,
    /// Built reference components, for activity-host.
    pub components: PathBuf,
}

/// A running worker process, killed when dropped.
pub struct WorkerProcess {
    child: Child,
    /// Its task queue.
    pub task_queue: String,
    /// activity-host's API address (`ip:port`).
    pub api: String,
    _dir: tempfile::TempDir,
}

impl WorkerProcess {
    /// Starts a worker of `kind` against `temporal` on its own task queue.
    pub fn start(
        kind: Kind,
        programs: &Programs,
        temporal: &str,
        webhook_url: &str,
        run: &str,
    ) -> anyhow::Result<Self> {
        Self::start_with(kind, programs, temporal, webhook_url, run, &[])
    }

    /// [`WorkerProcess::start`] with more environment variables (an activity-host's settings).
    pub fn start_with(
        kind: Kind,
        programs: &Programs,
        temporal: &str,
        webhook_url: &str,
        run: &str,
        env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        Self::start_role(kind, "worker", programs, temporal, webhook_url, run, env)
    }

    /// [`WorkerProcess::start_with`] running activity-host as `role` (`worker`, or `dev`:
    /// the worker and the REST API in one process, on [`WorkerProcess::api`]).
    pub fn start_role(
        kind: Kind,
        role: &str,
        programs: &Programs,
        temporal: &str,
        webhook_url: &str,
        run: &str,
        env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let task_queue = format!("bench-{}-{run}", kind.slug());
        let db = dir.path().join("users.sqlite");
        let api = format!("127.0.0.1:{}", test_support::free_port());
        let mut cmd = match kind {
            Kind::Host | Kind::HostLocal => {
                let mut c = Command::new(&programs.host);
                c.arg(role)
                    .env("ACTIVITY_HOST_WORKFLOW__TEMPORAL__ADDRESS", temporal)
                    .env("ACTIVITY_HOST_WORKFLOW__TEMPORAL__TASK_QUEUE", &task_queue)
                    .env("ACTIVITY_HOST_DATA_DIR", dir.path())
                    .env("ACTIVITY_HOST_ACTIVITIES__DEPLOY_REFERENCE", "true")
                    .env(
                        "ACTIVITY_HOST_ACTIVITIES__COMPONENTS_DIR",
                        &programs.components,
                    )
                    .env("ACTIVITY_HOST_NOTIFICATIONS__WEBHOOK_URL", webhook_url)
                    .env("ACTIVITY_HOST_API__LISTEN", &api)
                    .env("ACTIVITY_HOST_TELEMETRY__LOG_LEVEL", "warn")
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .env_remove("RUST_LOG");
                c
            }
            Kind::Rust => {
                let mut c = Command::new(&programs.rust);
                c.args(["--address", temporal, "--task-queue", &task_queue])
                    .args(["--webhook-url", webhook_url])
                    .arg("--db")
                    .arg(&db)
                    .env_remove("RUST_LOG");
                c
            }
            Kind::Python => {
                let mut c = Command::new(&programs.python);
                c.arg(&programs.python_worker)
                    .args(["--address", temporal, "--task-queue", &task_queue])
                    .args(["--webhook-url", webhook_url])
                    .arg("--db")
                    .arg(&db);
                c
            }
        };
        let log = std::fs::File::create(dir.path().join("worker.log"))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting the {}", kind.name()))?;
        Ok(Self {
            child,
            task_queue,
            api,
            _dir: dir,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails when the process has exited, with the end of its log.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let log =
                std::fs::read_to_string(self._dir.path().join("worker.log")).unwrap_or_default();
            let tail: String = log.lines().rev().take(20).collect::<Vec<_>>().join("\n");
            bail!("the worker exited ({status}); its log ends with:\n{tail}");
        }
        Ok(())
    }

    /// Peak resident set size of the process so far (`VmHWM`), in bytes.
    pub fn peak_rss(&self) -> anyhow::Result<u64> {
        status_kb(
            &Path::new("/proc")
                .join(self.pid().to_string())
                .join("status"),
            "VmHWM:",
        )
        .map(|kb| kb * 1024)
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `kB` field of a `/proc/.../status` file.
fn status_kb(path: &Path, field: &str) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no {field} in {}", path.display()))
}
