//! A Temporal cluster the way production runs one: the server built from source at the
//! version `deployments/versions.env` pins (`make temporal-server`), its schema set up by
//! that version's own sql tool on a throw-away PostgreSQL (persistence and SQL visibility),
//! several history shards, and the deployment's own files: `deployments/temporal/config.yaml`
//! (which requires mutual TLS at the frontend) and `deployments/temporal/dynamicconfig.yaml`.
//! Certificates are made for each cluster by `deployments/make-certs.sh` (openssl).

use std::path::{Path, PathBuf};

use crate::repo;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::dev_server::free_port;
use crate::postgres::{Postgres, PG_USER};

/// Why the cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The server or its sql tool was not built.
    #[error("Temporal server {version} not built ({path}): run `make temporal-server`")]
    NotBuilt {
        /// The version looked for.
        version: String,
        /// Where.
        path: String,
    },
    /// A step failed.
    #[error("{0}")]
    Failed(String),
    /// Spawning a program or writing a file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// `deployments/versions.env`: the versions every deployment pins.
#[derive(Debug, Clone)]
pub struct Versions {
    /// Temporal Server (`TEMPORAL_SERVER_VERSION`).
    pub server: String,
    /// Temporal Web UI (`TEMPORAL_UI_VERSION`).
    pub ui: String,
    /// PostgreSQL major version (`POSTGRES_VERSION`).
    pub postgres: String,
    /// History shards the cluster is created with (`TEMPORAL_HISTORY_SHARDS`).
    pub history_shards: u32,
}

impl Versions {
    /// Reads `deployments/versions.env`.
    pub fn read() -> Self {
        let text = std::fs::read_to_string(repo().join("deployments/versions.env"))
            .expect("deployments/versions.env");
        let get = |key: &str| {
            text.lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("{key} missing from deployments/versions.env"))
                .trim()
                .to_string()
        };
        Self {
            server: get("TEMPORAL_SERVER_VERSION"),
            ui: get("TEMPORAL_UI_VERSION"),
            postgres: get("POSTGRES_VERSION"),
            history_shards: get("TEMPORAL_HISTORY_SHARDS")
                .parse()
                .expect("TEMPORAL_HISTORY_SHARDS is a number"),
        }
    }

    /// Where `make temporal-server` puts the server and its sql tool for this version
    /// (`$TEMPORAL_SERVER_DIR`, else under the user's cache directory).
    pub fn server_bin_dir(&self) -> PathBuf {
        let root = std::env::var_os("TEMPORAL_SERVER_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
                PathBuf::from(home).join(".cache/activity-host/temporal")
            });
        root.join(&self.server).join("bin")
    }
}

/// Certificates made for one cluster by `deployments/make-certs.sh` (the script the compose
/// deployment's instructions run): a CA, the frontend's, the server's system worker's, a
/// client's (what a host presents), and a client signed by another CA (refused).
#[derive(Debug, Clone)]
pub struct Certificates {
    /// The directory holding them.
    pub dir: PathBuf,
}

impl Certificates {
    /// Makes them in `dir`, valid for two days.
    pub fn make(dir: &Path) -> Result<Self, ClusterError> {
        run(Command::new("sh")
            .arg(repo().join("deployments/make-certs.sh"))
            .arg(dir)
            .arg("2"))?;
        Ok(Self { dir: dir.into() })
    }

    /// A file of the set (`ca.pem`, `host.pem`, `host.key`, ...).
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// A running cluster, stopped when dropped.
pub struct TemporalCluster {
    child: Child,
    /// The frontend, `127.0.0.1:port` (TLS, client certificate required).
    pub address: String,
    /// The certificates it trusts and presents.
    pub certs: Certificates,
    /// What the versions file pins (the server is that version).
    pub versions: Versions,
    /// The server's log.
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

/// How long the server may take to answer after its start.
const START_TIMEOUT: Duration = Duration::from_secs(180);

impl TemporalCluster {
    /// Sets up the schema on `pg` and starts the server on free ports.
    pub fn start(pg: &Postgres) -> Result<Self, ClusterError> {
        let versions = Versions::read();
        let bin = versions.server_bin_dir();
        let (server, sql) = (bin.join("server"), bin.join("sql"));
        for program in [&server, &sql] {
            if !program.exists() {
                return Err(ClusterError::NotBuilt {
                    version: versions.server.clone(),
                    path: program.display().to_string(),
                });
            }
        }
        let dir = tempfile::tempdir()?;
        let certs = Certificates::make(&dir.path().join("tls"))?;
        for (db, schema) in [
            ("temporal", "postgresql/v12/temporal"),
            ("temporal_visibility", "postgresql/v12/visibility"),
        ] {
            let port = pg.port.to_string();
            let base = [
                "--plugin",
                "postgres12",
                "--ep",
                "127.0.0.1",
                "-p",
                &port,
                "-u",
                PG_USER,
                "--db",
                db,
            ];
            for step in [
                vec!["create"],
                vec!["setup-schema", "-v", "0.0"],
                vec!["update-schema", "--schema-name", schema],
            ] {
                run(Command::new(&sql).args(base).args(&step))?;
            }
        }
        let port = free_port();
        let log = dir.path().join("server.log");
        let out = std::fs::File::create(&log)?;
        let mut command = Command::new(&server);
        command
            .args(["--config-file"])
            .arg(repo().join("deployments/temporal/config.yaml"))
            .args(["--allow-no-auth", "start"])
            .env("TEMPORAL_DB_ADDRESS", format!("127.0.0.1:{}", pg.port))
            .env("TEMPORAL_DB_USER", PG_USER)
            .env("TEMPORAL_DB_PASSWORD", "")
            .env("TEMPORAL_TLS_DIR", &certs.dir)
            .env("TEMPORAL_BIND_IP", "127.0.0.1")
            .env("TEMPORAL_BROADCAST_ADDRESS", "127.0.0.1")
            .env(
                "TEMPORAL_DYNAMIC_CONFIG",
                repo().join("deployments/temporal/dynamicconfig.yaml"),
            )
            .env("TEMPORAL_LOG_LEVEL", "warn")
            .env("TEMPORAL_FRONTEND_PORT", port.to_string());
        for (var, port) in cluster_ports() {
            command.env(var, port.to_string());
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        let mut cluster = Self {
            child,
            address: format!("127.0.0.1:{port}"),
            certs,
            versions,
            log,
            _dir: dir,
        };
        cluster.wait_listening()?;
        Ok(cluster)
    }

    fn wait_listening(&mut self) -> Result<(), ClusterError> {
        let started = Instant::now();
        loop {
            if std::net::TcpStream::connect(&self.address).is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(ClusterError::Failed(format!(
                    "the Temporal server exited ({status}): {}",
                    self.log_tail()
                )));
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(ClusterError::Failed(format!(
                    "the Temporal server did not listen within {START_TIMEOUT:?}: {}",
                    self.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Registers namespace `name` with the `temporal` CLI (retrying while the frontend
    /// starts), and waits until the frontend describes it.
    pub fn create_namespace(&self, name: &str) -> Result<(), ClusterError> {
        let cli = crate::temporal_cli().map_err(|e| ClusterError::Failed(e.to_string()))?;
        let started = Instant::now();
        for step in ["create", "describe"] {
            loop {
                let out = Command::new(&cli)
                    .args(["operator", "namespace", step, "--namespace", name])
                    .args(self.cli_flags())
                    .stdin(Stdio::null())
                    .output()?;
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                if out.status.success() || (step == "create" && text.contains("already")) {
                    break;
                }
                if started.elapsed() > START_TIMEOUT {
                    return Err(ClusterError::Failed(format!(
                        "namespace {step} {name}: {text}\n{}",
                        self.log_tail()
                    )));
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        Ok(())
    }

    /// What a client of this cluster needs: its address and mutual TLS with the host's
    /// certificate.
    pub fn client_settings(&self) -> activity_worker::TemporalSettings {
        let mut settings = activity_worker::TemporalSettings {
            address: self.address.clone(),
            ..Default::default()
        };
        settings.tls.server_ca_file = Some(self.certs.file("ca.pem"));
        settings.tls.client_cert_file = Some(self.certs.file("host.pem"));
        settings.tls.client_key_file = Some(self.certs.file("host.key"));
        settings.tls.server_name = Some("temporal".into());
        settings
    }

    /// The `temporal` CLI's flags for [`TemporalCluster::client_settings`].
    pub fn cli_flags(&self) -> Vec<String> {
        let settings = self.client_settings();
        let mut flags = vec!["--address".to_string(), settings.address.clone()];
        for (_, flag, value) in tls_values(&settings.tls) {
            flags.extend([format!("--tls-{flag}"), value]);
        }
        flags
    }

    /// `activity-host`'s environment for [`TemporalCluster::client_settings`].
    pub fn host_env(&self) -> Vec<(String, String)> {
        let settings = self.client_settings();
        let mut env = vec![(
            "ACTIVITY_HOST_WORKFLOW__TEMPORAL__ADDRESS".to_string(),
            settings.address.clone(),
        )];
        for (key, _, value) in tls_values(&settings.tls) {
            let var = format!(
                "ACTIVITY_HOST_WORKFLOW__TEMPORAL__TLS__{}",
                key.to_uppercase()
            );
            env.push((var, value));
        }
        env
    }
}

/// The TLS settings that are set: each as `workflow.temporal.tls`'s key, the `temporal`
/// CLI's flag (after `--tls-`) and the value.
fn tls_values(
    tls: &activity_worker::settings::TemporalTls,
) -> Vec<(&'static str, &'static str, String)> {
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    [
        ("server_ca_file", "ca-path", path(&tls.server_ca_file)),
        ("client_cert_file", "cert-path", path(&tls.client_cert_file)),
        ("client_key_file", "key-path", path(&tls.client_key_file)),
        ("server_name", "server-name", tls.server_name.clone()),
    ]
    .into_iter()
    .filter_map(|(key, flag, value)| Some((key, flag, value?)))
    .collect()
}

impl Drop for TemporalCluster {
    fn drop(&mut self) {
        temporal_dev_server::stop_child(&mut self.child, Duration::from_secs(20));
    }
}

/// Ports for the server's services other than the frontend's gRPC port, by the variable of
/// `deployments/temporal/config.yaml` that names each (all below 32768, as the server stores
/// membership ports as PostgreSQL `smallint`: [`free_port`]'s range).
pub fn cluster_ports() -> Vec<(&'static str, u16)> {
    [
        "TEMPORAL_FRONTEND_HTTP_PORT",
        "TEMPORAL_FRONTEND_MEMBERSHIP_PORT",
        "TEMPORAL_MATCHING_PORT",
        "TEMPORAL_MATCHING_MEMBERSHIP_PORT",
        "TEMPORAL_HISTORY_PORT",
        "TEMPORAL_HISTORY_MEMBERSHIP_PORT",
        "TEMPORAL_WORKER_PORT",
        "TEMPORAL_WORKER_MEMBERSHIP_PORT",
    ]
    .into_iter()
    .map(|var| (var, free_port()))
    .collect()
}

fn run(command: &mut Command) -> Result<(), ClusterError> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ClusterError::Failed(format!("{command:?}: {e}")))?;
    if !out.status.success() {
        return Err(ClusterError::Failed(format!(
            "{command:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}
