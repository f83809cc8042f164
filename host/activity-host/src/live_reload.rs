//! `activity-host watch DIR` and `activity-host dev --watch DIR`: the save-to-running loop of
//! an activity crate. On every save it rebuilds the component, deploys it through a host's
//! REST API (which checks it before anything changes) and calls it with the sample inputs.
//! A failed build or a refused component leaves the version that serves in place.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use notify_debouncer_mini::{new_debouncer, notify::RecursiveMode, DebounceEventResult};
use serde_json::{json, Value};
use tokio::process::Command;

use crate::client::{ApiClient, DeployOptions};

/// Quiet time after a change before rebuilding: editors write a file in several steps.
const DEBOUNCE: Duration = Duration::from_millis(150);
/// Lines of compiler output shown for a failed build.
const BUILD_ERROR_LINES: usize = 40;

/// Why the loop could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum LiveReloadError {
    /// `cargo metadata` did not describe the crate.
    #[error("{dir} is not a cargo crate: {message}")]
    NotACrate {
        /// The directory.
        dir: String,
        /// Why.
        message: String,
    },
    /// The file watcher could not start.
    #[error("cannot watch {dir}: {message}")]
    Watch {
        /// The directory.
        dir: String,
        /// Why.
        message: String,
    },
}

/// Which build command turns the crate into a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BuildTool {
    /// `cargo build --release --target wasm32-wasip2`.
    Cargo,
    /// `cargo component build --release` (cargo-component).
    Component,
}

impl BuildTool {
    fn args(self) -> &'static [&'static str] {
        match self {
            BuildTool::Cargo => &["build", "--release", "--target", "wasm32-wasip2"],
            BuildTool::Component => &["component", "build", "--release"],
        }
    }

    /// The target directory's subdirectory the component lands in: cargo-component builds
    /// for wasm32-wasip1 and adapts the module to a component there.
    fn output_dir(self) -> &'static str {
        match self {
            BuildTool::Cargo => "wasm32-wasip2/release",
            BuildTool::Component => "wasm32-wasip1/release",
        }
    }
}

/// One activity crate, watched and redeployed on every save.
#[derive(Debug, Clone)]
pub struct LiveReload {
    /// The activity crate.
    pub dir: PathBuf,
    /// The activity type it is deployed as.
    pub name: String,
    /// How it is built.
    pub build: BuildTool,
    /// Sample inputs to call after each deploy: one JSON value per parameter.
    pub inputs: Vec<Value>,
    /// Grants, limits and export of the deploys.
    pub options: DeployOptions,
}

impl LiveReload {
    /// The component file the build writes: `<target>/wasm32-wasip2/release/<crate>.wasm`
    /// (or `wasm32-wasip1` with cargo-component).
    async fn artifact(&self) -> Result<PathBuf, LiveReloadError> {
        let not_a_crate = |message: String| LiveReloadError::NotACrate {
            dir: self.dir.display().to_string(),
            message,
        };
        let out = Command::new("cargo")
            .args(["metadata", "--no-deps", "--format-version", "1"])
            .current_dir(&self.dir)
            .output()
            .await
            .map_err(|e| not_a_crate(e.to_string()))?;
        if !out.status.success() {
            return Err(not_a_crate(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        let meta: Value =
            serde_json::from_slice(&out.stdout).map_err(|e| not_a_crate(e.to_string()))?;
        let manifest = self
            .dir
            .join("Cargo.toml")
            .canonicalize()
            .unwrap_or_default();
        let package = meta["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| Path::new(p["manifest_path"].as_str().unwrap_or_default()) == manifest)
            .or_else(|| meta["packages"].get(0))
            .ok_or_else(|| not_a_crate("no package".into()))?;
        let crate_name = package["name"]
            .as_str()
            .unwrap_or_default()
            .replace('-', "_");
        let target = meta["target_directory"].as_str().unwrap_or("target");
        Ok(Path::new(target)
            .join(self.build.output_dir())
            .join(format!("{crate_name}.wasm")))
    }

    /// Builds, deploys and calls once, then again after every change, until `stop` resolves.
    pub async fn run(
        &self,
        client: &ApiClient,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), LiveReloadError> {
        let artifact = self.artifact().await?;
        let (tx, mut changes) = tokio::sync::mpsc::channel::<()>(1);
        let target_dir = artifact
            .ancestors()
            .nth(3)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let watched = self.dir.clone();
        let mut debouncer = new_debouncer(DEBOUNCE, move |events: DebounceEventResult| {
            let relevant = events.ok().into_iter().flatten().any(|e| {
                !e.path.starts_with(&target_dir)
                    && !e
                        .path
                        .strip_prefix(&watched)
                        .unwrap_or(&e.path)
                        .components()
                        .any(|c| ignored(c.as_os_str()))
            });
            if relevant {
                // A full channel already holds a pending rebuild.
                let _ = tx.try_send(());
            }
        })
        .map_err(|e| self.watch_error(e))?;
        debouncer
            .watcher()
            .watch(&self.dir, RecursiveMode::Recursive)
            .map_err(|e| self.watch_error(e))?;
        println!(
            "watching {} for changes to {} (cargo {})",
            self.dir.display(),
            self.name,
            self.build.args().join(" ")
        );
        tokio::pin!(stop);
        let mut changed_at = Instant::now();
        let mut built = sources_fingerprint(&self.dir);
        loop {
            self.round(client, &artifact, changed_at).await;
            loop {
                tokio::select! {
                    _ = &mut stop => return Ok(()),
                    change = changes.recv() => {
                        if change.is_none() {
                            return Ok(());
                        }
                    }
                }
                // Builds and editors touch files without changing them (a read is an event
                // too): rebuild only when a source's size or modification time moved.
                let now = sources_fingerprint(&self.dir);
                if now != built {
                    built = now;
                    break;
                }
            }
            changed_at = Instant::now() - DEBOUNCE;
            println!("change seen; rebuilding {}", self.name);
        }
    }

    fn watch_error(&self, e: impl std::fmt::Display) -> LiveReloadError {
        LiveReloadError::Watch {
            dir: self.dir.display().to_string(),
            message: e.to_string(),
        }
    }

    async fn round(&self, client: &ApiClient, artifact: &Path, changed_at: Instant) {
        let name = &self.name;
        let built = Command::new("cargo")
            .args(self.build.args())
            .args(["--color", "never"])
            .current_dir(&self.dir)
            .output()
            .await;
        match built {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stderr);
                let lines: Vec<&str> = text.lines().collect();
                let tail = &lines[lines.len().saturating_sub(BUILD_ERROR_LINES)..];
                println!(
                    "build failed; {name} keeps serving its current version:\n{}",
                    tail.join("\n")
                );
                return;
            }
            Err(e) => {
                println!("cannot run cargo ({e}); {name} keeps serving its current version");
                return;
            }
        }
        let deployed = match client.deploy(artifact, name, &self.options).await {
            Ok(v) => v,
            Err(e) => {
                println!("deploy refused: {e}; {name} keeps serving its current version");
                return;
            }
        };
        let digest = &deployed.version.digest;
        if deployed.changed {
            println!(
                "{name} now serves {digest} (version {}), {} ms after the change",
                deployed.version.seq,
                changed_at.elapsed().as_millis()
            );
        } else {
            println!("{name} unchanged ({digest})");
        }
        if !self.inputs.is_empty() {
            let body = json!({ "args": self.inputs });
            match client.invoke(name, &body, true).await {
                Ok(v) if v["status"] == "COMPLETED" => println!(
                    "{name}({}) = {} [{}]",
                    args_text(&self.inputs),
                    v["result"],
                    v["version"].as_str().unwrap_or_default()
                ),
                Ok(v) => println!(
                    "{name}({}) failed: {}",
                    args_text(&self.inputs),
                    v["error"]["message"].as_str().unwrap_or_default()
                ),
                Err(e) => println!("{name}({}) failed: {e}", args_text(&self.inputs)),
            }
        }
    }
}

/// Directories of a crate that are not its sources.
fn ignored(name: &std::ffi::OsStr) -> bool {
    matches!(name.to_str(), Some("target" | ".git" | "node_modules"))
}

/// A hash of every source file's path, size and modification time under `dir`.
fn sources_fingerprint(dir: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    fn walk(dir: &Path, hasher: &mut std::collections::hash_map::DefaultHasher) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                if !ignored(&entry.file_name()) {
                    walk(&entry.path(), hasher);
                }
            } else {
                entry.path().hash(hasher);
                meta.len().hash(hasher);
                meta.modified().ok().hash(hasher);
            }
        }
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    walk(dir, &mut hasher);
    hasher.finish()
}

fn args_text(inputs: &[Value]) -> String {
    inputs
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
