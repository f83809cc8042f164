//! The watched directory (`activities.watch_dir`): writing `NAME.wasm` there deploys it as
//! activity type `NAME`; an optional `NAME.json` beside it gives its export, grants and
//! limits. A `NAME.json` alone whose `source` names an OCI artifact (`oci://...`) deploys
//! that artifact, pulled by the host. Files are polled: a changed size or modification time
//! triggers a deploy, which the registry turns into a no-op when the bytes and settings did
//! not change. A moved tag is not followed until the file changes: pin a digest, or touch it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use activity_oci::OciClient;
use activity_registry::{DeployRequest, Registry};
use activity_runtime::{ActivityLimits, Grants};
use serde::Deserialize;

/// Settings of one watched component, from `NAME.json`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sidecar {
    /// An OCI artifact to deploy (`oci://REGISTRY/REPOSITORY:TAG` or `@sha256:...`), for a
    /// `NAME.json` with no `NAME.wasm` beside it.
    pub source: Option<String>,
    /// The export to call.
    pub export: Option<String>,
    /// Capabilities granted.
    pub grants: Grants,
    /// Limits; missing keys take the configured defaults.
    pub limits: Option<ActivityLimits>,
    /// How it reaches calls (`immediate`, `pinned`, `ramp`); default `registry.rollout.policy`.
    pub rollout: Option<activity_registry::rollout::RolloutPolicy>,
    /// With `rollout: ramp`, the candidate's share of runs.
    pub ramp_percent: Option<u8>,
}

/// What a file looked like when it was last deployed.
type Seen = HashMap<PathBuf, (SystemTime, u64)>;

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// The activities in `dir` (`NAME.wasm`, or a `NAME.json` alone) whose files changed since
/// `seen`, each with its `.wasm` path (which may not exist).
fn changed(dir: &Path, seen: &Seen) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names = std::collections::BTreeSet::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if !matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("wasm" | "json")
        ) {
            continue;
        }
        if let Some(name) = path.file_stem().and_then(|s| s.to_str()) {
            names.insert(name.to_string());
        }
    }
    let mut out = Vec::new();
    for name in names {
        let path = dir.join(format!("{name}.wasm"));
        let sidecar = path.with_extension("json");
        let now = (stamp(&path), stamp(&sidecar));
        let before = (seen.get(&path).copied(), seen.get(&sidecar).copied());
        if now != before {
            out.push((name, path));
        }
    }
    out
}

async fn deploy_one(
    registry: &Registry,
    oci: &OciClient,
    name: &str,
    path: &Path,
    defaults: ActivityLimits,
) -> Result<bool, String> {
    let sidecar_path = path.with_extension("json");
    let sidecar: Sidecar = match tokio::fs::read(&sidecar_path).await {
        Ok(text) => {
            serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", sidecar_path.display()))?
        }
        Err(_) => Sidecar::default(),
    };
    let mut request = DeployRequest {
        export: sidecar.export,
        grants: sidecar.grants,
        limits: sidecar.limits.unwrap_or(defaults),
        deployed_by: format!("watch:{}", sidecar_path.display()),
        source: None,
        rollout: sidecar.rollout,
        ramp_percent: sidecar.ramp_percent,
    };
    match (sidecar.source, path.exists()) {
        (Some(_), true) => Err(format!(
            "{} names a source and {} exists: keep one",
            sidecar_path.display(),
            path.display()
        )),
        (Some(source), false) => {
            activity_api::activities::deploy_reference(registry, oci, name, &source, request)
                .await
                .map(|o| o.changed)
                .map_err(|e| e.message)
        }
        (None, false) => Err(format!(
            "{} has no source and there is no {}",
            sidecar_path.display(),
            path.display()
        )),
        (None, true) => {
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|e| format!("read {}: {e}", path.display()))?;
            request.deployed_by = format!("watch:{}", path.display());
            registry
                .deploy(name, bytes, request)
                .await
                .map(|o| o.changed)
                .map_err(|e| e.to_string())
        }
    }
}

/// Polls `dir` every `every` and deploys what changed, until the task is dropped.
pub async fn watch(
    registry: Arc<Registry>,
    oci: Arc<OciClient>,
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
            match deploy_one(&registry, &oci, &name, &path, defaults).await {
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
