//! The worker's settings, as the configuration file spells them (`workflow.temporal`,
//! `worker`, `worker.user_workflow`), with their defaults. The host's `Config` embeds these
//! structs; nothing copies their fields.

use std::path::PathBuf;
use std::time::Duration;

use activity_runtime::InvalidSetting;
use serde::{Deserialize, Serialize};

/// `workflow.temporal`: how to reach Temporal (the seed's keys, and how to authenticate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemporalSettings {
    /// Frontend address, `host:port` or a URL.
    pub address: String,
    /// Task queue of the workflows and activities.
    pub task_queue: String,
    /// Namespace.
    pub namespace: String,
    /// TLS to the frontend, mutual when a client certificate is named.
    pub tls: TemporalTls,
    /// An API key sent with every call (Temporal Cloud's way to authenticate); best set
    /// through `ACTIVITY_HOST_WORKFLOW__TEMPORAL__API_KEY`. Never logged.
    pub api_key: Option<String>,
    /// A file holding the API key (read at each new connection), instead of `api_key`.
    pub api_key_file: Option<PathBuf>,
}

impl Default for TemporalSettings {
    fn default() -> Self {
        Self {
            address: "localhost:7233".into(),
            task_queue: "user-task-queue".into(),
            namespace: "default".into(),
            tls: TemporalTls::default(),
            api_key: None,
            api_key_file: None,
        }
    }
}

/// `workflow.temporal.tls`: TLS to the Temporal frontend. Off unless `enabled` or any file
/// is named. The files are read at each new connection; the client certificate and key
/// again at each TLS handshake once they change on disk, so a rotated certificate needs no
/// restart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemporalTls {
    /// Use TLS even when no file is named (a frontend whose certificate the system trusts).
    pub enabled: bool,
    /// PEM file of the CA certificates that sign the frontend's certificate; without it, the
    /// system's roots.
    pub server_ca_file: Option<PathBuf>,
    /// PEM file of this host's client certificate (chain), for mutual TLS.
    pub client_cert_file: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    pub client_key_file: Option<PathBuf>,
    /// The name the frontend's certificate must carry, when it differs from the address's
    /// host.
    pub server_name: Option<String>,
}

impl TemporalTls {
    /// Whether connections use TLS.
    pub fn is_on(&self) -> bool {
        self.enabled
            || self.server_ca_file.is_some()
            || self.client_cert_file.is_some()
            || self.client_key_file.is_some()
    }
}

impl TemporalSettings {
    /// The frontend's host (IPv6 without brackets) and port, read as a URL.
    pub fn host_and_port(&self) -> Option<(String, u16)> {
        let url = crate::temporal_url(&self.address).ok()?;
        let host = url.host_str()?.trim_matches(['[', ']']).to_string();
        Some((host, url.port_or_known_default()?))
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        let has_port = self
            .address
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
        if !has_port {
            return Err(InvalidSetting::new(
                "workflow.temporal.address",
                format!("expected host:port, found {:?}", self.address),
            ));
        }
        for (key, value) in [
            ("workflow.temporal.task_queue", &self.task_queue),
            ("workflow.temporal.namespace", &self.namespace),
        ] {
            if value.trim().is_empty() {
                return Err(InvalidSetting::new(key, "must not be empty"));
            }
        }
        if self.tls.client_cert_file.is_some() != self.tls.client_key_file.is_some() {
            return Err(InvalidSetting::new(
                "workflow.temporal.tls.client_cert_file",
                "client_cert_file and client_key_file go together (mutual TLS needs both)",
            ));
        }
        if self.api_key.is_some() && self.api_key_file.is_some() {
            return Err(InvalidSetting::new(
                "workflow.temporal.api_key_file",
                "set api_key or api_key_file, not both",
            ));
        }
        if self.api_key.as_deref().is_some_and(|k| k.trim().is_empty()) {
            return Err(InvalidSetting::new(
                "workflow.temporal.api_key",
                "must not be empty when set",
            ));
        }
        Ok(())
    }

    /// A copy for display: the API key masked.
    pub fn masked(&self) -> Self {
        Self {
            api_key: self.api_key.as_ref().map(|_| "********".into()),
            ..self.clone()
        }
    }

    /// Defaults with another address, namespace and task queue.
    pub fn new(
        address: impl Into<String>,
        namespace: impl Into<String>,
        task_queue: impl Into<String>,
    ) -> Self {
        Self {
            address: address.into(),
            task_queue: task_queue.into(),
            namespace: namespace.into(),
            ..Self::default()
        }
    }
}

/// `worker`: how much the worker runs at once and how it stops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerSettings {
    /// Activity tasks run at once on this host (local activities share the same capacity).
    pub max_concurrent_activities: usize,
    /// Workflow tasks processed at once.
    pub max_concurrent_workflow_tasks: usize,
    /// Workflow runs kept in memory between tasks.
    pub max_cached_workflows: usize,
    /// Activity tasks the server may hand back eagerly with one workflow task completion.
    pub max_eager_activities_per_workflow_task: usize,
    /// Workflow task polls open at once (sticky and normal queue together; at least 2). Set
    /// explicitly, so the worker never enrolls in the server's poller autoscaling, which
    /// scales an idle worker down to one poll.
    pub workflow_pollers: usize,
    /// Activity task polls open at once (at least 1).
    pub activity_pollers: usize,
    /// Activities started per second on the whole task queue, across every host (Temporal
    /// enforces it on the server; the last host to poll sets it). `None`: no limit.
    pub max_task_queue_activities_per_second: Option<f64>,
    /// Activities started per second by this host. `None`: no limit.
    pub max_worker_activities_per_second: Option<f64>,
    /// Milliseconds a cancelled activity may run on to notice `is-cancelled` and stop by
    /// itself before it is interrupted.
    pub cancel_grace_ms: u64,
    /// Milliseconds shutdown waits for running activities.
    pub graceful_shutdown_ms: u64,
    /// Milliseconds between reads of the task queue's backlog for the autoscaler's metrics
    /// (`task_queue_backlog_tasks`, ...), by every role with a Temporal connection; 0: none.
    pub backlog_poll_ms: u64,
    /// Timeouts and retries `UserWorkflow` gives each activity.
    pub user_workflow: ActivityCallSettings,
}

impl Default for WorkerSettings {
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
            backlog_poll_ms: 10_000,
            user_workflow: ActivityCallSettings::default(),
        }
    }
}

impl WorkerSettings {
    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if self.workflow_pollers < 2 {
            return Err(InvalidSetting::new(
                "worker.workflow_pollers",
                "must be at least 2 (one sticky, one normal queue poll)",
            ));
        }
        for (key, rate) in [
            (
                "worker.max_task_queue_activities_per_second",
                self.max_task_queue_activities_per_second,
            ),
            (
                "worker.max_worker_activities_per_second",
                self.max_worker_activities_per_second,
            ),
        ] {
            if rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
                return Err(InvalidSetting::new(
                    key,
                    "must be a positive number of activities per second",
                ));
            }
        }
        InvalidSetting::at_least_one(&[
            ("worker.activity_pollers", self.activity_pollers as u64),
            (
                "worker.max_concurrent_activities",
                self.max_concurrent_activities as u64,
            ),
            (
                "worker.user_workflow.start_to_close_ms",
                self.user_workflow.start_to_close_ms,
            ),
        ])
    }

    /// How long a cancelled activity may run on before it is interrupted.
    pub fn cancel_grace(&self) -> Duration {
        Duration::from_millis(self.cancel_grace_ms)
    }

    /// How long shutdown waits for running activities.
    pub fn graceful_shutdown(&self) -> Duration {
        Duration::from_millis(self.graceful_shutdown_ms)
    }
}

/// `worker.user_workflow`: timeouts and retries of each activity `UserWorkflow` calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActivityCallSettings {
    /// Start-to-close timeout of each attempt, in milliseconds.
    pub start_to_close_ms: u64,
    /// Heartbeat timeout of each remote attempt, in milliseconds (0: none). The host
    /// heartbeats for every running guest, so an attempt whose host died is retried after
    /// this, not after the start-to-close timeout.
    pub heartbeat_timeout_ms: u64,
    /// First retry interval, in milliseconds.
    pub initial_interval_ms: u64,
    /// Growth factor of the retry interval.
    pub backoff_coefficient: f64,
    /// Longest retry interval, in milliseconds.
    pub maximum_interval_ms: u64,
    /// Attempts in total, 0 for unlimited.
    pub maximum_attempts: u32,
}

impl Default for ActivityCallSettings {
    fn default() -> Self {
        Self {
            start_to_close_ms: 30_000,
            heartbeat_timeout_ms: 8_000,
            initial_interval_ms: 1000,
            backoff_coefficient: 2.0,
            maximum_interval_ms: 30_000,
            maximum_attempts: 10,
        }
    }
}

impl ActivityCallSettings {
    /// Start-to-close timeout of each attempt.
    pub fn start_to_close(&self) -> Duration {
        Duration::from_millis(self.start_to_close_ms)
    }

    /// Heartbeat timeout of each remote attempt, if any.
    pub fn heartbeat_timeout(&self) -> Option<Duration> {
        (self.heartbeat_timeout_ms > 0).then(|| Duration::from_millis(self.heartbeat_timeout_ms))
    }

    /// First retry interval.
    pub fn initial_interval(&self) -> Duration {
        Duration::from_millis(self.initial_interval_ms)
    }

    /// Longest retry interval.
    pub fn maximum_interval(&self) -> Duration {
        Duration::from_millis(self.maximum_interval_ms)
    }
}
