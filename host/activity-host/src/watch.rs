//! The watched directory (`activities.watch_dir`): writing `NAME.wasm` there deploys it as
//! activity type `NAME`; an optional `NAME.json` beside it gives its export, grants and
//! limits. Files are polled: a changed size or modification time triggers a deploy, which
//! the registry turns into a no-op when the bytes and settings did not change.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use activity_registry::{DeployRequest, Registry};
use activity_runtime::{ActivityLimits, Grants};
use serde::Deserialize;

/// Settings of one watched component, from `NAME.json`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sidecar {
    /// The export to call.
    pub export: Option<String>,
    /// Capabilities granted.
    pub grants: Grants,
    /// Limits; missing keys take the configured defaults.
    pub limits: Option<ActivityLimits>,
}

/// What a file looked like when it was last deployed.
type Seen = HashMap<PathBuf, (SystemTime, u64)>;

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// The `.wasm` files in `dir` whose content (or sidecar) changed since `seen`.
fn changed(dir: &Path, seen: &Seen) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("wasm") {
            continue;
        }
        let Some(name) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        let sidecar = path.with_extension("json");
        let now = (stamp(&path), stamp(&sidecar));
        let before = (seen.get(&path).copied(), seen.get(&sidecar).copied());
        if now != before {
            out.push((name, path));
        }
    }
    out.sort();
    out
}

async fn deploy_one(
    registry: &Registry,
    name: &str,
    path: &Path,
    defaults: ActivityLimits,
) -> Result<bool, String> {
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| format!("read {}: {e}", path.display()))?;
    let sidecar_path = path.with_extension("json");
    let sidecar: Sidecar = match tokio::fs::read(&sidecar_path).await {
        Ok(text) => {
            serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", sidecar_path.display()))?
        }
        Err(_) => Sidecar::default(),
    };
    let request = DeployRequest {
        export: sidecar.export,
        grants: sidecar.grants,
        limits: sidecar.limits.unwrap_or(defaults),
        deployed_by: format!("watch:{}", path.display()),
    };
    registry
        .deploy(name, bytes, request)
        .await
        .map(|o| o.changed)
        .map_err(|e| e.to_string())
}

/// Polls `dir` every `every` and deploys what changed, until the task is dropped.
pub async fn watch(
    registry: Arc<Registry>,
    dir: PathBuf,
    every: Duration,
    defaults: ActivityLimits,
) {
    tracing::info!(dir = %dir.display(), "watching for activity components");
    let mut seen = Seen::new();
    loop {
        let scan = {
            let (dir, seen) = (dir.clone(), seen.clone());
            tokio::task::spawn_blocking(move || changed(&dir, &seen))
                .await
                .unwrap_or_default()
        };
        for (name, path) in scan {
            let sidecar = path.with_extension("json");
            match deploy_one(&registry, &name, &path, defaults).await {
                Ok(changed) => {
                    tracing::info!(activity = name.as_str(), file = %path.display(), changed, "watched component deployed")
                }
                Err(e) => {
                    tracing::error!(activity = name.as_str(), file = %path.display(), error = e.as_str(), "watched component refused; the active version keeps serving")
                }
            }
            // Remember the attempt either way: a refused file is retried when it changes.
            for p in [path, sidecar] {
                match stamp(&p) {
                    Some(s) => seen.insert(p, s),
                    None => seen.remove(&p),
                };
            }
        }
        tokio::time::sleep(every).await;
    }
}
