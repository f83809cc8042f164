//! A throw-away OCI registry: Debian's `docker-registry` package (the CNCF `distribution`
//! server, which `make test` installs), on a free loopback port, plain HTTP, storage in a
//! temporary directory, with or without htpasswd authentication.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// Why the registry could not start.
#[derive(Debug)]
pub struct RegistryError(pub String);

impl std::fmt::Display for RegistryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RegistryError {}

/// The `docker-registry` binary: `$DOCKER_REGISTRY_BIN`, else on the PATH.
pub fn registry_bin() -> Result<PathBuf, RegistryError> {
    if let Some(p) = std::env::var_os("DOCKER_REGISTRY_BIN") {
        return Ok(p.into());
    }
    which::which("docker-registry").map_err(|_| {
        RegistryError(
            "docker-registry not found: install Debian's docker-registry package (make test does)"
                .into(),
        )
    })
}

/// A running registry; stopped (and its storage removed) on drop.
pub struct OciRegistry {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    config: PathBuf,
}

impl OciRegistry {
    /// Starts a registry; with `user`, every request needs that user's basic credentials.
    pub fn start(user: Option<(&str, &str)>) -> Result<Self, RegistryError> {
        let dir = tempfile::tempdir().map_err(|e| RegistryError(e.to_string()))?;
        let port = free_port();
        let storage = dir.path().join("storage");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        if let Some((name, password)) = user {
            let hash = bcrypt::hash(password, 5).map_err(|e| RegistryError(e.to_string()))?;
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{name}:{hash}\n"))
                .map_err(|e| RegistryError(e.to_string()))?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: activity-host-tests\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).map_err(|e| RegistryError(e.to_string()))?;
        let mut registry = Self {
            dir,
            port,
            child: None,
            config: config_path,
        };
        registry.start_again()?;
        Ok(registry)
    }

    /// Starts the registry again after [`stop`](Self::stop), on the same port and storage.
    pub fn start_again(&mut self) -> Result<(), RegistryError> {
        let log = std::fs::File::create(self.dir.path().join("registry.log"))
            .map_err(|e| RegistryError(e.to_string()))?;
        let child = Command::new(registry_bin()?)
            .arg("serve")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| RegistryError(e.to_string()))?)
            .stderr(log)
            .spawn()
            .map_err(|e| RegistryError(format!("start docker-registry: {e}")))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(RegistryError(format!(
                    "docker-registry exited ({status}): {}",
                    self.log()
                )));
            }
            if let Some(code) = self.status_of("/v2/") {
                if code == 200 || code == 401 {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(RegistryError(format!(
            "docker-registry did not answer within 30 s: {}",
            self.log()
        )))
    }

    /// The HTTP status of a GET of `path`, or `None` when nothing answers.
    fn status_of(&self, path: &str) -> Option<u16> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head).ok()?;
        std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
    }

    /// `127.0.0.1:PORT`, the registry part of references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The file the registry serves blob `digest` (`sha256:<hex>`) from.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// What the registry logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Stops the registry (it answers nothing until [`start_again`](Self::start_again)).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OciRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}
