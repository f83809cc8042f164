//! The host's configuration: one typed struct loaded from YAML (`configs/config.yaml`)
//! with environment overrides (`ACTIVITY_HOST_SECTION__KEY=value`), validated at start.

use std::path::{Path, PathBuf};

use activity_runtime::{ActivityLimits, EngineConfig};
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
    #[error("invalid configuration: {key}: {reason}")]
    Value {
        /// Dotted key path.
        key: &'static str,
        /// What was expected.
        reason: String,
    },
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
    pub runtime: RuntimeSection,
    /// Activity components.
    pub activities: ActivitiesConfig,
    /// The REST API.
    pub api: ApiConfig,
    /// The Temporal worker.
    pub worker: WorkerConfig,
    /// Notifications sent by SendNotification.
    pub notifications: NotificationsConfig,
    /// `activity-host dev`: the local Temporal dev server.
    pub dev: DevConfig,
    /// The module registry.
    pub registry: RegistryConfig,
    /// OCI registries that deploys by reference pull from (credentials, transport).
    pub oci: activity_oci::OciSettings,
    /// Logs.
    pub telemetry: TelemetryConfig,
}

/// `registry:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// Largest component accepted by a deploy, in bytes.
    pub max_component_bytes: usize,
    /// How often a host re-reads the active versions from the store, in milliseconds, to
    /// pick up deploys made through another host.
    pub reconcile_ms: u64,
    /// Where the registry and the key-value stores live.
    pub backend: RegistryBackend,
    /// Where the key-value stores (`wasi:keyvalue`, the users store among them) live; `None`:
    /// where `backend` puts the registry.
    pub keyvalue_backend: Option<RegistryBackend>,
    /// PostgreSQL connection URL (`postgres://user:password@host:5432/db`), with
    /// `backend: postgres` or `keyvalue_backend: postgres`.
    pub postgres_url: Option<String>,
    /// Connections in the PostgreSQL pool.
    pub postgres_pool_size: usize,
}

/// Where the registry and the key-value stores live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistryBackend {
    /// SQLite files and a blob directory in `data_dir`: one host.
    Sqlite,
    /// A PostgreSQL database shared by a fleet of hosts.
    Postgres,
}

impl RegistryConfig {
    /// Where the key-value stores live: `keyvalue_backend`, else the registry's `backend`.
    pub fn keyvalue(&self) -> RegistryBackend {
        self.keyvalue_backend.unwrap_or(self.backend)
    }

    /// True when the registry or the key-value stores use `backend`.
    pub fn uses(&self, backend: RegistryBackend) -> bool {
        self.backend == backend || self.keyvalue() == backend
    }
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            max_component_bytes: 50 << 20,
            reconcile_ms: 2000,
            backend: RegistryBackend::Sqlite,
            keyvalue_backend: None,
            postgres_url: None,
            postgres_pool_size: 16,
        }
    }
}

/// `api:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Address the REST API listens on.
    pub listen: String,
    /// Bearer token the admin routes (deploy, rollback, remove) require; unset: they are open.
    pub admin_token: Option<String>,
    /// Allow admin routes without a token on a non-loopback address.
    pub allow_open_admin: bool,
    /// Longest a request may take, in milliseconds, before it is answered 503.
    pub request_timeout_ms: u64,
    /// Largest JSON body, in bytes.
    pub max_json_body_bytes: usize,
    /// `POST /api/v1/activities/{name}/invoke` defaults.
    pub invoke: InvokeConfig,
    /// Where `UserWorkflow` runs its activities when a start request does not say:
    /// `remote` (Temporal activities, any host) or `local` (in-process on the workflow's host).
    pub activity_mode: activity_worker::ActivityMode,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            admin_token: None,
            allow_open_admin: false,
            request_timeout_ms: 60_000,
            max_json_body_bytes: 1 << 20,
            invoke: InvokeConfig::default(),
            activity_mode: activity_worker::ActivityMode::Remote,
        }
    }
}

/// `api.invoke:` section: options of a standalone activity a request does not set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InvokeConfig {
    /// Start-to-close timeout of each attempt, in milliseconds.
    pub start_to_close_ms: u64,
    /// Schedule-to-close timeout of the whole execution, retries included, in milliseconds.
    pub schedule_to_close_ms: u64,
    /// Attempts, 0 for unlimited (bounded by the schedule-to-close timeout).
    pub maximum_attempts: u32,
    /// How long the request waits for the result before answering `202` with the id to poll.
    pub wait_ms: u64,
}

impl Default for InvokeConfig {
    fn default() -> Self {
        Self {
            start_to_close_ms: 30_000,
            schedule_to_close_ms: 120_000,
            maximum_attempts: 3,
            wait_ms: 30_000,
        }
    }
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

/// `worker:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// Activity tasks run at once on this host.
    pub max_concurrent_activities: usize,
    /// Workflow tasks processed at once.
    pub max_concurrent_workflow_tasks: usize,
    /// Workflow runs cached between tasks.
    pub max_cached_workflows: usize,
    /// Activity tasks the server may hand back eagerly per workflow task completion.
    pub max_eager_activities_per_workflow_task: usize,
    /// Workflow task polls open at once (sticky and normal queue together; at least 2).
    pub workflow_pollers: usize,
    /// Activity task polls open at once (at least 1).
    pub activity_pollers: usize,
    /// Activities started per second on the whole task queue, across every host (Temporal
    /// enforces it on the server; the last host to poll sets it). `None`: no limit.
    pub max_task_queue_activities_per_second: Option<f64>,
    /// Activities started per second by this host. `None`: no limit.
    pub max_worker_activities_per_second: Option<f64>,
    /// Milliseconds a cancelled activity may run on to stop by itself before it is interrupted.
    pub cancel_grace_ms: u64,
    /// Milliseconds shutdown waits for running activities.
    pub graceful_shutdown_ms: u64,
    /// Timeouts and retries UserWorkflow gives each activity.
    pub user_workflow: UserWorkflowConfig,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            max_concurrent_activities: 100,
            max_concurrent_workflow_tasks: 100,
            max_cached_workflows: 1000,
            max_eager_activities_per_workflow_task: 3,
            workflow_pollers: 10,
            activity_pollers: 10,
            max_task_queue_activities_per_second: None,
            max_worker_activities_per_second: None,
            cancel_grace_ms: 5000,
            graceful_shutdown_ms: 30_000,
            user_workflow: UserWorkflowConfig::default(),
        }
    }
}

/// `worker.user_workflow:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserWorkflowConfig {
    /// Start-to-close timeout of each activity attempt, in milliseconds.
    pub start_to_close_ms: u64,
    /// First retry interval, in milliseconds.
    pub initial_interval_ms: u64,
    /// Growth factor of the retry interval.
    pub backoff_coefficient: f64,
    /// Longest retry interval, in milliseconds.
    pub maximum_interval_ms: u64,
    /// Attempts per activity, 0 for unlimited.
    pub maximum_attempts: u32,
}

impl Default for UserWorkflowConfig {
    fn default() -> Self {
        Self {
            start_to_close_ms: 30_000,
            initial_interval_ms: 1000,
            backoff_coefficient: 2.0,
            maximum_interval_ms: 30_000,
            maximum_attempts: 10,
        }
    }
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
    pub temporal: TemporalConfig,
}

/// `workflow.temporal`: how to reach Temporal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemporalConfig {
    /// Frontend address, `host:port`.
    pub address: String,
    /// Task queue of the workflows and activities.
    pub task_queue: String,
    /// Namespace.
    pub namespace: String,
}

impl Default for TemporalConfig {
    fn default() -> Self {
        Self {
            address: "localhost:7233".into(),
            task_queue: "user-task-queue".into(),
            namespace: "default".into(),
        }
    }
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

/// `runtime:` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSection {
    /// Engine-wide settings.
    pub engine: EngineConfig,
    /// Default limits of every activity.
    pub limits: ActivityLimits,
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

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let t = &self.workflow.temporal;
        if t.address
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .is_none()
        {
            return Err(ConfigError::Value {
                key: "workflow.temporal.address",
                reason: format!("expected host:port, found {:?}", t.address),
            });
        }
        if t.task_queue.trim().is_empty() {
            return Err(ConfigError::Value {
                key: "workflow.temporal.task_queue",
                reason: "must not be empty".into(),
            });
        }
        if t.namespace.trim().is_empty() {
            return Err(ConfigError::Value {
                key: "workflow.temporal.namespace",
                reason: "must not be empty".into(),
            });
        }
        let listen: std::net::SocketAddr =
            self.api.listen.parse().map_err(|_| ConfigError::Value {
                key: "api.listen",
                reason: format!("expected ip:port, found {:?}", self.api.listen),
            })?;
        match &self.api.admin_token {
            Some(t) if t.len() < 16 => {
                return Err(ConfigError::Value {
                    key: "api.admin_token",
                    reason: "must be at least 16 characters".into(),
                })
            }
            None if !listen.ip().is_loopback() && !self.api.allow_open_admin => {
                return Err(ConfigError::Value {
                    key: "api.admin_token",
                    reason: format!(
                        "api.listen {listen} is not a loopback address: set an admin token \
                         (ACTIVITY_HOST_API__ADMIN_TOKEN) or api.allow_open_admin: true"
                    ),
                })
            }
            _ => {}
        }
        for (key, value) in [
            ("api.request_timeout_ms", self.api.request_timeout_ms),
            (
                "api.max_json_body_bytes",
                self.api.max_json_body_bytes as u64,
            ),
            (
                "api.invoke.start_to_close_ms",
                self.api.invoke.start_to_close_ms,
            ),
            (
                "api.invoke.schedule_to_close_ms",
                self.api.invoke.schedule_to_close_ms,
            ),
            ("api.invoke.wait_ms", self.api.invoke.wait_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::Value {
                    key,
                    reason: "must be at least 1".into(),
                });
            }
        }
        if self.api.invoke.wait_ms >= self.api.request_timeout_ms {
            return Err(ConfigError::Value {
                key: "api.invoke.wait_ms",
                reason: format!(
                    "must be below api.request_timeout_ms ({})",
                    self.api.request_timeout_ms
                ),
            });
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.telemetry.log_level) {
            return Err(ConfigError::Value {
                key: "telemetry.log_level",
                reason: format!("not a log filter: {e}"),
            });
        }
        if let Some(url) = &self.telemetry.otlp_endpoint {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Value {
                    key: "telemetry.otlp_endpoint",
                    reason: format!("expected an http(s) URL, found {url:?}"),
                });
            }
        }
        if let Some(url) = &self.notifications.webhook_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Value {
                    key: "notifications.webhook_url",
                    reason: format!("expected an http(s) URL, found {url:?}"),
                });
            }
        }
        if self.worker.workflow_pollers < 2 {
            return Err(ConfigError::Value {
                key: "worker.workflow_pollers",
                reason: "must be at least 2 (one sticky, one normal queue poll)".into(),
            });
        }
        for (key, rate) in [
            (
                "worker.max_task_queue_activities_per_second",
                self.worker.max_task_queue_activities_per_second,
            ),
            (
                "worker.max_worker_activities_per_second",
                self.worker.max_worker_activities_per_second,
            ),
        ] {
            if rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
                return Err(ConfigError::Value {
                    key,
                    reason: "must be a positive number of activities per second".into(),
                });
            }
        }
        if self.worker.activity_pollers == 0 {
            return Err(ConfigError::Value {
                key: "worker.activity_pollers",
                reason: "must be at least 1".into(),
            });
        }
        if self.worker.max_concurrent_activities == 0 {
            return Err(ConfigError::Value {
                key: "worker.max_concurrent_activities",
                reason: "must be at least 1".into(),
            });
        }
        if self.worker.max_concurrent_activities > self.runtime.engine.max_instances as usize {
            return Err(ConfigError::Value {
                key: "worker.max_concurrent_activities",
                reason: format!(
                    "must not exceed runtime.engine.max_instances ({})",
                    self.runtime.engine.max_instances
                ),
            });
        }
        if self.registry.max_component_bytes == 0 {
            return Err(ConfigError::Value {
                key: "registry.max_component_bytes",
                reason: "must be at least 1".into(),
            });
        }
        if self.activities.watch_interval_ms == 0 {
            return Err(ConfigError::Value {
                key: "activities.watch_interval_ms",
                reason: "must be at least 1".into(),
            });
        }
        if self.registry.uses(RegistryBackend::Postgres)
            && self
                .registry
                .postgres_url
                .as_deref()
                .unwrap_or("")
                .is_empty()
        {
            return Err(ConfigError::Value {
                key: "registry.postgres_url",
                reason: "is required with registry.backend or registry.keyvalue_backend: postgres"
                    .into(),
            });
        }
        if self.registry.postgres_pool_size == 0 {
            return Err(ConfigError::Value {
                key: "registry.postgres_pool_size",
                reason: "must be at least 1".into(),
            });
        }
        if self.registry.reconcile_ms == 0 {
            return Err(ConfigError::Value {
                key: "registry.reconcile_ms",
                reason: "must be at least 1".into(),
            });
        }
        if self.worker.user_workflow.start_to_close_ms == 0 {
            return Err(ConfigError::Value {
                key: "worker.user_workflow.start_to_close_ms",
                reason: "must be at least 1".into(),
            });
        }
        let e = &self.runtime.engine;
        if e.max_instances == 0 {
            return Err(ConfigError::Value {
                key: "runtime.engine.max_instances",
                reason: "must be at least 1".into(),
            });
        }
        if e.epoch_tick_ms == 0 {
            return Err(ConfigError::Value {
                key: "runtime.engine.epoch_tick_ms",
                reason: "must be at least 1".into(),
            });
        }
        let l = &self.runtime.limits;
        if l.max_memory_bytes > e.max_memory_bytes_ceiling {
            return Err(ConfigError::Value {
                key: "runtime.limits.max_memory_bytes",
                reason: format!(
                    "must not exceed runtime.engine.max_memory_bytes_ceiling ({})",
                    e.max_memory_bytes_ceiling
                ),
            });
        }
        if l.max_execution_ms == 0 {
            return Err(ConfigError::Value {
                key: "runtime.limits.max_execution_ms",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }

    /// Directory of the compiled-component cache.
    pub fn compiled_cache_dir(&self) -> PathBuf {
        self.data_dir.0.join("compiled")
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
        let url = self.registry.postgres_url.as_ref()?;
        let Some((scheme, rest)) = url.split_once("://") else {
            return Some(url.clone());
        };
        Some(match rest.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:********@{host}"),
                None => url.clone(),
            },
            None => url.clone(),
        })
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
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/config.yaml");
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
            "telemetry.otlp_endpoint" => Some(json!("http://collector:4318")),
            // Valid only with a URL: the test sets registry.postgres_url beside it.
            "registry.backend" => Some(json!("postgres")),
            "worker.max_task_queue_activities_per_second" => Some(json!(50.5)),
            "worker.max_worker_activities_per_second" => Some(json!(20.5)),
            "registry.postgres_url" => Some(json!("postgres://pg.example.com/activities")),
            "registry.keyvalue_backend" => Some(json!("sqlite")),
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
