//! The host's configuration: one typed struct loaded from YAML (`configs/config.yaml`)
//! with environment overrides (`ACTIVITY_HOST_SECTION__KEY=value`), validated at start.

use std::path::{Path, PathBuf};

use activity_api::ApiSettings;
use activity_registry::RegistrySettings;
use activity_runtime::{InvalidSetting, RuntimeSettings};
use activity_worker::{TemporalSettings, WorkerSettings};
use figment::providers::{Env, Format, Serialized, Yaml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Prefix of environment variables that override configuration keys. Nested keys are
/// joined with a double underscore: `ACTIVITY_HOST_WORKFLOW__TEMPORAL__ADDRESS`.
pub const ENV_PREFIX: &str = "ACTIVITY_HOST_";

/// `ACTIVITY_HOST_*` variables that are not configuration keys (after the prefix, as figment
/// compares them): the client commands' `--api` and `--token`, and `--config`.
const NOT_KEYS: &[&str] = &["api", "token", "config"];

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file or environment value has the wrong shape; the message names the key.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// A value is well-formed but not acceptable.
    #[error("invalid configuration: {0}")]
    Value(#[from] InvalidSetting),
}

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Temporal connection (the seed's `workflow.temporal` keys).
    pub workflow: WorkflowConfig,
    /// Where state lives.
    pub data_dir: DataDir,
    /// The component runtime.
    pub runtime: RuntimeSettings,
    /// Activity components.
    pub activities: ActivitiesConfig,
    /// The REST API.
    pub api: ApiSettings,
    /// The Temporal worker.
    pub worker: WorkerSettings,
    /// Notifications sent by SendNotification.
    pub notifications: NotificationsConfig,
    /// `activity-host dev`: the local Temporal dev server.
    pub dev: DevConfig,
    /// The module registry.
    pub registry: RegistrySettings,
    /// OCI registries that deploys by reference pull from (credentials, transport).
    pub oci: activity_oci::OciSettings,
    /// Logs.
    pub telemetry: TelemetryConfig,
}

/// `telemetry:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Log format: `text` or `json`.
    pub log_format: LogFormat,
    /// Log filter (`tracing` env-filter syntax) when `RUST_LOG` is unset.
    pub log_level: String,
    /// OTLP/HTTP collector (`http://collector:4318`) to export traces to; unset: none.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported traces.
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Text,
            log_level: "info".into(),
            otlp_endpoint: None,
            service_name: "activity-host".into(),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `notifications:` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsConfig {
    /// Where SendNotification posts; when unset, the host records notifications and serves
    /// them at `GET /api/v1/notifications`.
    pub webhook_url: Option<String>,
}

/// `dev:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DevConfig {
    /// The `temporal` CLI; unset: `.venv/bin/temporal`, then `temporal` on PATH.
    pub temporal_cli: Option<PathBuf>,
    /// Port of the dev server's Web UI.
    pub ui_port: u16,
}

impl Default for DevConfig {
    fn default() -> Self {
        Self {
            temporal_cli: None,
            ui_port: 8088,
        }
    }
}

/// `workflow:` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkflowConfig {
    /// `workflow.temporal`.
    pub temporal: TemporalSettings,
}

/// The data directory (compiled cache, SQLite files, module store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DataDir(pub PathBuf);

impl Default for DataDir {
    fn default() -> Self {
        Self(PathBuf::from(".data"))
    }
}

/// `activities:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActivitiesConfig {
    /// Directory with the reference components (`validate_user.wasm`, ...) that `dev` loads.
    pub components_dir: PathBuf,
    /// A directory to watch: writing `NAME.wasm` there deploys it as activity type `NAME`,
    /// with its export, grants and limits from an optional `NAME.json`. Unset: no watching.
    pub watch_dir: Option<PathBuf>,
    /// How often the watched directory is scanned, in milliseconds.
    pub watch_interval_ms: u64,
    /// Deploy the reference activities from `components_dir` at start in the `worker` and
    /// `server` roles too (`dev` always does); a no-op when they are already active.
    pub deploy_reference: bool,
}

impl Default for ActivitiesConfig {
    fn default() -> Self {
        Self {
            components_dir: PathBuf::from("target/guests/wasm32-wasip2/release"),
            watch_dir: None,
            watch_interval_ms: 1000,
            deploy_reference: false,
        }
    }
}

impl Config {
    /// Loads defaults, then `path` (when given), then environment overrides, and validates.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = path {
            if !path.exists() {
                return Err(ConfigError::Invalid(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Yaml::file(path));
        }
        // ACTIVITY_HOST_API, _TOKEN and _CONFIG are the client commands' and the config
        // file's own variables, not keys: they would read as a section named `api` (or an
        // unknown key) and make every command fail.
        figment = figment.merge(Env::prefixed(ENV_PREFIX).ignore(NOT_KEYS).split("__"));
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but make no sense: each section's own checks, then those
    /// across sections.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.workflow.temporal.validate()?;
        self.api.validate()?;
        self.worker.validate()?;
        self.registry.validate()?;
        self.runtime.validate()?;
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.telemetry.log_level) {
            return Err(InvalidSetting::new(
                "telemetry.log_level",
                format!("not a log filter: {e}"),
            )
            .into());
        }
        for (key, url) in [
            ("telemetry.otlp_endpoint", &self.telemetry.otlp_endpoint),
            ("notifications.webhook_url", &self.notifications.webhook_url),
        ] {
            let http = |u: &url::Url| matches!(u.scheme(), "http" | "https") && u.has_host();
            match url.as_deref().map(url::Url::parse) {
                Some(Ok(u)) if http(&u) => {}
                Some(_) => {
                    let found = url.as_deref().unwrap_or_default();
                    return Err(InvalidSetting::new(
                        key,
                        format!("expected an http(s) URL, found {found:?}"),
                    )
                    .into());
                }
                None => {}
            }
        }
        let max_instances = self.runtime.engine.max_instances as usize;
        if self.worker.max_concurrent_activities > max_instances {
            return Err(InvalidSetting::new(
                "worker.max_concurrent_activities",
                format!("must not exceed runtime.engine.max_instances ({max_instances})"),
            )
            .into());
        }
        InvalidSetting::at_least_one(&[(
            "activities.watch_interval_ms",
            self.activities.watch_interval_ms,
        )])?;
        Ok(())
    }

    /// Directory of the compiled-component cache: `runtime.compiled_cache_dir`, else
    /// `compiled` in the data directory.
    pub fn compiled_cache_dir(&self) -> PathBuf {
        self.runtime
            .compiled_cache_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.0.join("compiled"))
    }

    /// The dev server's database file.
    pub fn temporal_db_path(&self) -> PathBuf {
        self.data_dir.0.join("temporal.db")
    }

    /// The registry's SQLite index.
    pub fn registry_index_path(&self) -> PathBuf {
        self.data_dir.0.join("registry.sqlite")
    }

    /// The directory of deployed component files, named by digest.
    pub fn modules_dir(&self) -> PathBuf {
        self.data_dir.0.join("modules")
    }

    /// `registry.postgres_url` with its password masked, for display.
    pub fn masked_postgres_url(&self) -> Option<String> {
        let text = self.registry.postgres_url.as_ref()?;
        let Ok(mut url) = url::Url::parse(text) else {
            return Some(text.clone());
        };
        if url.password().is_some() {
            let _ = url.set_password(Some("********"));
        }
        Some(url.to_string())
    }

    /// The SQLite file of the key-value stores (users among them).
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.0.join("store.sqlite")
    }
}

#[cfg(test)]
// figment::Jail's closures return figment::Error, which is large; that is its API.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_file_equals_the_defaults() {
        let path = test_support::repo().join("configs/config.yaml");
        figment::Jail::expect_with(|_| {
            let loaded = Config::load(Some(&path)).unwrap();
            assert_eq!(loaded, Config::default());
            Ok(())
        });
    }

    #[test]
    fn wrong_values_name_their_key() {
        let mut c = Config::default();
        c.workflow.temporal.address = "nowhere".into();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("workflow.temporal.address"), "{err}");
    }

    /// Every leaf key of the configuration, as a dotted path, with its default.
    fn leaves(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, serde_json::Value)>) {
        match value.as_object() {
            Some(map) => {
                for (k, v) in map {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaves(&path, v, out);
                }
            }
            None => out.push((prefix.to_string(), value.clone())),
        }
    }

    /// A different value for `key` that still validates, as an environment string and as
    /// the JSON value it must become.
    fn other_value(key: &str, default: &serde_json::Value) -> (String, serde_json::Value) {
        use serde_json::json;
        let special = match key {
            "workflow.temporal.address" => Some(json!("temporal:7233")),
            "api.listen" => Some(json!("127.0.0.1:9090")),
            "api.admin_token" => Some(json!("0123456789abcdef0123")),
            "telemetry.log_format" => Some(json!("json")),
            "api.activity_mode" => Some(json!("local")),
            "telemetry.log_level" => Some(json!("debug")),
            "notifications.webhook_url" => Some(json!("http://hooks.example.com/x")),
            "activities.watch_dir" => Some(json!("/srv/activities")),
            "dev.temporal_cli" => Some(json!("/usr/local/bin/temporal")),
            "runtime.limits.fuel" => Some(json!(1000000)),
            "runtime.compiled_cache_dir" => Some(json!("/var/cache/activity-host")),
            "telemetry.otlp_endpoint" => Some(json!("http://collector:4318")),
            // Valid only with a URL: the test sets registry.postgres_url beside it.
            "registry.backend" => Some(json!("postgres")),
            "worker.max_task_queue_activities_per_second" => Some(json!(50.5)),
            "worker.max_worker_activities_per_second" => Some(json!(20.5)),
            "registry.postgres_url" => Some(json!("postgres://pg.example.com/activities")),
            "registry.keyvalue_backend" => Some(json!("sqlite")),
            "registry.rollout.policy" => Some(json!("pinned")),
            "registry.rollout.auto_abort.failure_rate" => Some(json!(0.25)),
            "api.quotas.per_key_per_minute" => Some(json!(120)),
            "api.quotas.per_activity_per_minute" => Some(json!(600)),
            "registry.secrets_key" => Some(json!("ab".repeat(32))),
            "registry.secrets_key_file" => Some(json!("/run/secrets/activity-host-key")),
            "runtime.egress.allowed_hosts" => Some(json!(["*.example.com"])),
            "runtime.memory_budget_bytes" => Some(json!(1_610_612_736u64)),
            "runtime.policy.key_value_stores" => Some(json!(["orders-*"])),
            "runtime.policy.secrets" => Some(json!(["orders_token"])),
            "runtime.policy.max_execution_ms" => Some(json!(30000)),
            "workflow.temporal.tls.server_ca_file" => Some(json!("/etc/temporal/ca.pem")),
            // Valid only in pairs: the test sets the other file beside each.
            "workflow.temporal.tls.client_cert_file" => Some(json!("/etc/temporal/host.pem")),
            "workflow.temporal.tls.client_key_file" => Some(json!("/etc/temporal/host.key")),
            "workflow.temporal.tls.server_name" => Some(json!("temporal.example.com")),
            "workflow.temporal.api_key" => Some(json!("temporal-api-key")),
            "workflow.temporal.api_key_file" => Some(json!("/run/secrets/temporal-api-key")),
            _ => None,
        };
        let value = special.unwrap_or_else(|| match default {
            serde_json::Value::Bool(b) => json!(!b),
            serde_json::Value::Number(n) if n.is_f64() => json!(n.as_f64().unwrap() + 1.5),
            serde_json::Value::Number(n) => json!(n.as_u64().unwrap() + 1),
            serde_json::Value::String(s) => json!(format!("{s}-x")),
            other => panic!("{key}: no override value for {other}"),
        });
        let text = match &value {
            serde_json::Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        (text, value)
    }

    #[test]
    fn every_key_can_be_overridden_by_the_environment() {
        let defaults = serde_json::to_value(Config::default()).unwrap();
        let mut keys = Vec::new();
        leaves("", &defaults, &mut keys);
        assert!(keys.len() > 40, "{} keys", keys.len());
        for (key, default) in keys {
            let var = format!("{ENV_PREFIX}{}", key.to_uppercase().replace('.', "__"));
            let (text, expected) = other_value(&key, &default);
            figment::Jail::expect_with(|jail| {
                jail.set_env(&var, &text);
                if key == "registry.backend" {
                    jail.set_env(
                        format!("{ENV_PREFIX}REGISTRY__POSTGRES_URL"),
                        "postgres://pg.example.com/activities",
                    );
                }
                for (one, other, value) in [
                    (
                        "client_cert_file",
                        "CLIENT_KEY_FILE",
                        "/etc/temporal/host.key",
                    ),
                    (
                        "client_key_file",
                        "CLIENT_CERT_FILE",
                        "/etc/temporal/host.pem",
                    ),
                ] {
                    if key == format!("workflow.temporal.tls.{one}") {
                        jail.set_env(
                            format!("{ENV_PREFIX}WORKFLOW__TEMPORAL__TLS__{other}"),
                            value,
                        );
                    }
                }
                let loaded = Config::load(None).map_err(|e| format!("{var}={text}: {e}"))?;
                let got = serde_json::to_value(&loaded).unwrap();
                let pointer = format!("/{}", key.replace('.', "/"));
                assert_eq!(got.pointer(&pointer), Some(&expected), "{var}={text}");
                Ok(())
            });
        }
    }

    #[test]
    fn invalid_files_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        for (text, key) in [
            ("api:\n  listen: nowhere\n", "api.listen"),
            (
                "worker:\n  max_concurrent_activities: -1\n",
                "max_concurrent_activities",
            ),
            (
                "runtime:\n  limits:\n    max_execution_ms: soon\n",
                "max_execution_ms",
            ),
            ("telemetry:\n  log_format: xml\n", "log_format"),
            ("api:\n  listen: 0.0.0.0:8080\n", "api.admin_token"),
            ("api:\n  admin_token: short\n", "api.admin_token"),
            (
                "api:\n  invoke:\n    wait_ms: 90000\n",
                "api.invoke.wait_ms",
            ),
            ("registry: oops\n", "registry"),
        ] {
            let path = dir.path().join("c.yaml");
            std::fs::write(&path, text).unwrap();
            // Under the jail's lock: other tests set ACTIVITY_HOST_* variables.
            figment::Jail::expect_with(|_| {
                let err = Config::load(Some(&path)).unwrap_err().to_string();
                assert!(err.contains(key), "{text:?}: {err}");
                Ok(())
            });
        }
    }

    #[test]
    fn the_client_commands_variables_are_not_keys() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("ACTIVITY_HOST_API", "http://127.0.0.1:9999");
            jail.set_env("ACTIVITY_HOST_TOKEN", "0123456789abcdef0123");
            jail.set_env("ACTIVITY_HOST_CONFIG", "elsewhere.yaml");
            jail.set_env("ACTIVITY_HOST_API__LISTEN", "127.0.0.1:9090");
            let loaded = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(loaded.api.listen, "127.0.0.1:9090");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_refused_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "workflow:\n  temporal:\n    adress: x:1\n").unwrap();
        figment::Jail::expect_with(|_| {
            let err = Config::load(Some(&path)).unwrap_err().to_string();
            assert!(err.contains("adress"), "{err}");
            Ok(())
        });
    }
}
