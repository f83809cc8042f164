//! Deployment manifests: one file (TOML or YAML) naming many activities with their
//! components, grants, limits and config values, applied by `activity-host apply FILE`.
//!
//! Shaped after `spin.toml`: one table per activity under `activity`, the component under
//! `source` (a file relative to the manifest, or an OCI artifact `oci://...` the host
//! pulls), grants beside it.
//!
//! ```toml
//! [activity.ValidateUser]
//! source = "target/wasm32-wasip2/release/validate_user.wasm"
//!
//! [activity.CreateUser]
//! source = "oci://ghcr.io/acme/create-user@sha256:4f1c..."
//!
//! [activity.SendNotification]
//! source = "send_notification.wasm"
//! allowed_hosts = ["hooks.example.com"]
//! key_value_stores = ["notifications"]
//! config = { webhook_url = "https://hooks.example.com/notify" }
//! limits = { max_memory_bytes = 67108864, max_execution_ms = 5000 }
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use figment::providers::{Format, Toml, Yaml};
use figment::Figment;
use serde::Deserialize;

use crate::client::DeployOptions;

/// A manifest that cannot be applied; nothing was deployed.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Neither `.toml` nor `.yaml`/`.yml`.
    #[error("{0}: a manifest is a .toml, .yaml or .yml file")]
    Format(String),
    /// Unreadable, malformed, or a key of the wrong type or unknown.
    #[error("{path}: {message}")]
    Invalid {
        /// The manifest.
        path: String,
        /// What is wrong, with the key's path.
        message: String,
    },
}

/// Per-call limits an activity sets; what it leaves out takes the host's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    /// Memory limit in bytes.
    pub max_memory_bytes: Option<u64>,
    /// Time limit in milliseconds.
    pub max_execution_ms: Option<u64>,
    /// Largest result in bytes.
    pub max_output_bytes: Option<u64>,
    /// Fuel budget.
    pub fuel: Option<u64>,
    /// Calls running at once per host.
    pub max_concurrent: Option<u32>,
}

/// One activity of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestActivity {
    /// The component file, relative to the manifest (resolved by [`Manifest::load`]), or an
    /// OCI artifact `oci://REGISTRY/REPOSITORY:TAG` / `...@sha256:DIGEST`.
    pub source: String,
    /// The export to call, when not the type name in kebab case.
    #[serde(default)]
    pub export: Option<String>,
    /// Hosts the activity may call over outgoing HTTP.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Key-value stores it may open.
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    /// Secrets it may use (placeholders through `wasi:config`).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Values it reads through `wasi:config`.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Limits per call.
    #[serde(default)]
    pub limits: LimitOverrides,
    /// How the version reaches calls: `immediate`, `pinned` or `ramp` (default: the host's
    /// `registry.rollout.policy`).
    #[serde(default)]
    pub rollout: Option<activity_registry::rollout::RolloutPolicy>,
    /// With `rollout = "ramp"`, the candidate's share of runs (0..100).
    #[serde(default)]
    pub ramp_percent: Option<u8>,
}

impl ManifestActivity {
    /// What the deploy call sends besides the file.
    pub fn deploy_options(&self) -> DeployOptions {
        DeployOptions {
            allow_hosts: self.allowed_hosts.clone(),
            kv_stores: self.key_value_stores.clone(),
            secrets: self.secrets.clone(),
            config: self
                .config
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
            export: self.export.clone(),
            max_memory_bytes: self.limits.max_memory_bytes,
            max_execution_ms: self.limits.max_execution_ms,
            max_output_bytes: self.limits.max_output_bytes,
            fuel: self.limits.fuel,
            max_concurrent: self.limits.max_concurrent,
            rollout: self.rollout,
            ramp_percent: self.ramp_percent,
        }
    }
}

/// A parsed manifest: activities by type name, sources resolved against its directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The activities, by type name.
    #[serde(default)]
    pub activity: BTreeMap<String, ManifestActivity>,
}

impl Manifest {
    /// Reads and checks `path`: its format, every key, every name, every source file's
    /// presence. Sources become paths relative to the working directory.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let shown = path.display().to_string();
        let figment = match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => Figment::from(Toml::file_exact(path)),
            Some("yaml" | "yml") => Figment::from(Yaml::file_exact(path)),
            _ => return Err(ManifestError::Format(shown)),
        };
        let invalid = |message: String| ManifestError::Invalid {
            path: shown.clone(),
            message,
        };
        let mut manifest: Manifest = figment.extract().map_err(|e| {
            invalid(
                e.into_iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        if manifest.activity.is_empty() {
            return Err(invalid(
                "no [activity.NAME] tables: nothing to apply".into(),
            ));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        for (name, activity) in &mut manifest.activity {
            activity_registry::check_name(name)
                .map_err(|e| invalid(format!("activity.{name}: {e}")))?;
            if activity.source.starts_with(activity_oci::SCHEME) {
                activity_oci::ArtifactRef::parse(&activity.source)
                    .map_err(|e| invalid(format!("activity.{name}.source: {e}")))?;
            } else {
                let file = dir.join(&activity.source);
                if !file.is_file() {
                    return Err(invalid(format!(
                        "activity.{name}.source: no file at {}",
                        file.display()
                    )));
                }
                activity.source = file.display().to_string();
            }
            if let Some(key) = activity.config.keys().find(|k| k.is_empty()) {
                return Err(invalid(format!(
                    "activity.{name}.config: empty key {key:?}"
                )));
            }
        }
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn toml_and_yaml_read_the_same() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.wasm"), b"\0asm").unwrap();
        let toml = write(
            dir.path(),
            "m.toml",
            r#"
[activity.Notify]
source = "a.wasm"
allowed_hosts = ["hooks.example.com"]
key_value_stores = ["notifications"]
config = { url = "https://hooks.example.com/x" }
limits = { max_execution_ms = 5000 }
"#,
        );
        let yaml = write(
            dir.path(),
            "m.yaml",
            r#"
activity:
  Notify:
    source: a.wasm
    allowed_hosts: [hooks.example.com]
    key_value_stores: [notifications]
    config: { url: "https://hooks.example.com/x" }
    limits: { max_execution_ms: 5000 }
"#,
        );
        let a = Manifest::load(&toml).unwrap();
        assert_eq!(a, Manifest::load(&yaml).unwrap());
        let notify = &a.activity["Notify"];
        assert_eq!(
            notify.source,
            dir.path().join("a.wasm").display().to_string()
        );
        let options = notify.deploy_options();
        assert_eq!(options.config, vec!["url=https://hooks.example.com/x"]);
        assert_eq!(options.max_execution_ms, Some(5000));
        assert_eq!(options.max_memory_bytes, None);
    }

    #[test]
    fn bad_manifests_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.wasm"), b"\0asm").unwrap();
        for (text, expected) in [
            (
                "[activity.A]\nsource = \"a.wasm\"\nallow_host = [\"x\"]\n",
                "allow_host",
            ),
            (
                "[activity.A]\nsource = \"missing.wasm\"\n",
                "activity.A.source",
            ),
            ("[activity.\"Bad Name\"]\nsource = \"a.wasm\"\n", "Bad Name"),
            (
                "[activity.A]\nsource = \"a.wasm\"\nlimits = { max_execution_ms = \"soon\" }\n",
                "max_execution_ms",
            ),
            ("[activity.A]\n", "source"),
            (
                "[activity.A]\nsource = \"oci://localhost:5000/Bad Ref\"\n",
                "activity.A.source: invalid OCI reference",
            ),
            ("", "nothing to apply"),
            ("[activity.A\n", "m.toml"),
        ] {
            let path = write(dir.path(), "m.toml", text);
            let e = Manifest::load(&path).unwrap_err().to_string();
            assert!(e.contains(expected), "{text:?}: {e}");
        }
        let e = Manifest::load(&write(dir.path(), "m.json", "{}")).unwrap_err();
        assert!(matches!(e, ManifestError::Format(_)), "{e}");
    }
}
