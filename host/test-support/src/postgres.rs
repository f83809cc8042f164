//! A throw-away PostgreSQL cluster: `initdb` in a temporary directory, the server on a free
//! port of 127.0.0.1 (and a socket in that directory), trust authentication, durability
//! off (tests need speed, not crash safety), removed when dropped.
//!
//! The server binaries come from `$PG_BIN` (a directory), else the newest
//! `/usr/lib/postgresql/<version>/bin` (Debian's `postgresql` package, which `make test`
//! installs when missing), else `PATH`. PostgreSQL refuses to run as root: as root, the
//! cluster belongs to the `postgres` user the package creates, and its programs run through
//! `runuser`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Why the cluster could not start.
#[derive(Debug)]
pub enum PostgresError {
    /// No PostgreSQL server binaries were found.
    NotInstalled(String),
    /// A file operation failed.
    Io(std::io::Error),
    /// A PostgreSQL program failed.
    Failed(String),
}

impl std::fmt::Display for PostgresError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PostgresError::NotInstalled(m) => write!(f, "PostgreSQL is not installed: {m}"),
            PostgresError::Io(e) => write!(f, "{e}"),
            PostgresError::Failed(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for PostgresError {}

impl From<std::io::Error> for PostgresError {
    fn from(e: std::io::Error) -> Self {
        PostgresError::Io(e)
    }
}

/// The user the tests connect as.
pub const PG_USER: &str = "activity";

/// A running throw-away cluster.
pub struct Postgres {
    bin: PathBuf,
    run_as: Option<String>,
    dir: tempfile::TempDir,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    running: bool,
}

/// The directory of the server binaries.
pub fn postgres_bin() -> Result<PathBuf, PostgresError> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .find(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
        })
        .ok_or_else(|| {
            PostgresError::NotInstalled(
                "no initdb in $PG_BIN, /usr/lib/postgresql/*/bin or PATH; \
                 `make test` installs Debian's postgresql package"
                    .into(),
            )
        })
}

/// `(uid, gid)` of a user, from the system's user database.
fn user_ids(name: &str) -> Option<(u32, u32)> {
    let user = nix::unistd::User::from_name(name).ok()??;
    Some((user.uid.as_raw(), user.gid.as_raw()))
}

fn is_root() -> bool {
    rustix::process::getuid().is_root()
}

impl Postgres {
    /// Creates a cluster and starts it on a free port.
    pub fn start() -> Result<Self, PostgresError> {
        let mut pg = Self::create()?;
        pg.start_again()?;
        Ok(pg)
    }

    /// Creates a cluster that accepts TCP connections only over TLS, with the server
    /// certificate `cert` and its key `key` (PEM files), and starts it on a free port.
    pub fn start_tls_only(cert: &Path, key: &Path) -> Result<Self, PostgresError> {
        let mut pg = Self::create()?;
        let data = pg.data_dir();
        for (from, to) in [(cert, "server.crt"), (key, "server.key")] {
            let target = data.join(to);
            std::fs::copy(from, &target)?;
            std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
            if pg.run_as.is_some() {
                let (uid, gid) = user_ids("postgres").unwrap_or((0, 0));
                std::os::unix::fs::chown(&target, Some(uid), Some(gid))?;
            }
        }
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf)?;
        text.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(&conf, text)?;
        // The socket for local tools; over TCP, TLS or nothing.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        )?;
        pg.start_again()?;
        Ok(pg)
    }

    fn create() -> Result<Self, PostgresError> {
        let bin = postgres_bin()?;
        let dir = tempfile::tempdir()?;
        let run_as = if is_root() {
            let (uid, gid) = user_ids("postgres").ok_or_else(|| {
                PostgresError::NotInstalled("running as root and there is no postgres user".into())
            })?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
            Some("postgres".to_string())
        } else {
            None
        };
        let pg = Self {
            bin,
            run_as,
            dir,
            port: crate::free_port(),
            running: false,
        };
        let data = pg.data_dir();
        let out = pg.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                PG_USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        if !out.status.success() {
            return Err(PostgresError::Failed(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(pg)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<Output, PostgresError> {
        let exe = self.bin.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        Ok(cmd.args(args).stdin(Stdio::null()).output()?)
    }

    /// `postgres://activity@127.0.0.1:port/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://{PG_USER}@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server again after [`Postgres::stop`], on the same port and data.
    pub fn start_again(&mut self) -> Result<(), PostgresError> {
        let data = self.data_dir();
        let log = self.dir.path().join("server.log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=200",
            self.port,
            path_str(self.dir.path())
        );
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-l",
                path_str(&log),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )?;
        if !out.status.success() {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(PostgresError::Failed(format!(
                "pg_ctl start failed: {}{}",
                String::from_utf8_lossy(&out.stderr),
                log
            )));
        }
        self.running = true;
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                return Err(PostgresError::Failed(
                    "the server does not accept connections".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Stops the server (fast shutdown: clients are disconnected).
    pub fn stop(&mut self) {
        if self.running {
            let data = self.data_dir();
            let _ = self.run(
                "pg_ctl",
                &["-D", path_str(&data), "-m", "fast", "-w", "stop"],
            );
            self.running = false;
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            let data = self.data_dir();
            let _ = self.run(
                "pg_ctl",
                &["-D", path_str(&data), "-m", "immediate", "-w", "stop"],
            );
        }
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}
