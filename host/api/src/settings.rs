//! The REST API's settings, as the configuration file spells them (`api`, `api.invoke`), with
//! their defaults. The host's `Config` embeds them; nothing copies their fields.

use std::time::Duration;

use activity_runtime::InvalidSetting;
use activity_worker::ActivityMode;
use serde::{Deserialize, Serialize};

/// `api`: where the REST API listens and what it allows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// Address the REST API listens on.
    pub listen: String,
    /// The bootstrap admin's bearer token. Set, every route but health, readiness, metrics
    /// and the API's description needs a bearer token: this one or an API key. Unset, auth
    /// is off and every caller is an anonymous admin (refused on a non-loopback address
    /// unless `allow_open_admin`).
    pub admin_token: Option<String>,
    /// Serve with auth off on a non-loopback address.
    pub allow_open_admin: bool,
    /// Rate limits of invokes and workflow starts.
    pub quotas: QuotaSettings,
    /// Longest a request may take, in milliseconds, before it is answered 503.
    pub request_timeout_ms: u64,
    /// Largest JSON body, in bytes.
    pub max_json_body_bytes: usize,
    /// Most connections open at once; the next waits in the kernel's accept queue until one
    /// closes.
    pub max_connections: usize,
    /// A connection that sends no complete request head within this many milliseconds (a
    /// new one, or a keep-alive one between requests) is closed.
    pub header_read_timeout_ms: u64,
    /// On SIGTERM, how long `/readyz` answers 503 while everything is still served, before
    /// the listener closes and the worker stops polling, in milliseconds: time for a load
    /// balancer to take the host out.
    pub shutdown_delay_ms: u64,
    /// `POST /api/v1/activities/{name}/invoke` defaults.
    pub invoke: InvokeSettings,
    /// Where `UserWorkflow` runs its activities when a start request does not say:
    /// `remote` (Temporal activities, any host) or `local` (in-process on the workflow's host).
    pub activity_mode: ActivityMode,
    /// Ask Temporal for eager execution of started workflows: when this process also runs
    /// the worker (`dev`) and it has a free workflow slot, the start's answer carries the
    /// first workflow task, which needs no poll. Ignored by a server without a worker.
    pub eager_workflow_start: bool,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            admin_token: None,
            allow_open_admin: false,
            quotas: QuotaSettings::default(),
            request_timeout_ms: 60_000,
            max_json_body_bytes: 1 << 20,
            max_connections: 1024,
            header_read_timeout_ms: 30_000,
            shutdown_delay_ms: 0,
            invoke: InvokeSettings::default(),
            activity_mode: ActivityMode::Remote,
            eager_workflow_start: true,
        }
    }
}

impl ApiSettings {
    /// Checks values that parse but make no sense, and refuses open admin routes on an
    /// address other machines can reach unless `allow_open_admin` says so.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        let listen: std::net::SocketAddr = self.listen.parse().map_err(|_| {
            InvalidSetting::new(
                "api.listen",
                format!("expected ip:port, found {:?}", self.listen),
            )
        })?;
        match &self.admin_token {
            Some(t) if t.len() < 16 => {
                return Err(InvalidSetting::new(
                    "api.admin_token",
                    "must be at least 16 characters",
                ))
            }
            None if !listen.ip().is_loopback() && !self.allow_open_admin => {
                return Err(InvalidSetting::new(
                    "api.admin_token",
                    format!(
                        "api.listen {listen} is not a loopback address: set an admin token \
                         (ACTIVITY_HOST_API__ADMIN_TOKEN) or api.allow_open_admin: true"
                    ),
                ))
            }
            _ => {}
        }
        let i = &self.invoke;
        InvalidSetting::at_least_one(&[
            ("api.request_timeout_ms", self.request_timeout_ms),
            ("api.max_json_body_bytes", self.max_json_body_bytes as u64),
            ("api.max_connections", self.max_connections as u64),
            ("api.header_read_timeout_ms", self.header_read_timeout_ms),
            ("api.invoke.start_to_close_ms", i.start_to_close_ms),
            ("api.invoke.schedule_to_close_ms", i.schedule_to_close_ms),
            ("api.invoke.wait_ms", i.wait_ms),
        ])?;
        if i.wait_ms >= self.request_timeout_ms {
            return Err(InvalidSetting::new(
                "api.invoke.wait_ms",
                format!(
                    "must be below api.request_timeout_ms ({})",
                    self.request_timeout_ms
                ),
            ));
        }
        Ok(())
    }

    /// Longest a request may take.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// `api.quotas`: calls a minute (invokes and workflow starts), answered `429` with
/// `Retry-After` beyond them. Unset: no limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaSettings {
    /// Per caller (an API key's own `per_minute` comes first).
    pub per_key_per_minute: Option<u32>,
    /// Per activity type invoked, whoever calls.
    pub per_activity_per_minute: Option<u32>,
    /// API-key tokens that match no live key, per client address: past it, a token the
    /// host has not just seen is answered `429` without a store lookup.
    pub failed_auth_per_minute: Option<u32>,
}

impl Default for QuotaSettings {
    fn default() -> Self {
        Self {
            per_key_per_minute: None,
            per_activity_per_minute: None,
            failed_auth_per_minute: Some(60),
        }
    }
}

/// `api.invoke`: options of a standalone activity that a request does not set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InvokeSettings {
    /// Start-to-close timeout of each attempt, in milliseconds.
    pub start_to_close_ms: u64,
    /// Schedule-to-close timeout of the whole execution, retries included, in milliseconds.
    pub schedule_to_close_ms: u64,
    /// Heartbeat timeout of each attempt, in milliseconds, 0 for none. The host heartbeats
    /// for every running guest, so an attempt whose host died is retried after this.
    pub heartbeat_timeout_ms: u64,
    /// Attempts, 0 for unlimited (bounded by the schedule-to-close timeout).
    pub maximum_attempts: u32,
    /// How long the request waits for the result before answering `202` with the id to poll,
    /// in milliseconds.
    pub wait_ms: u64,
}

impl Default for InvokeSettings {
    fn default() -> Self {
        Self {
            start_to_close_ms: 30_000,
            schedule_to_close_ms: 120_000,
            heartbeat_timeout_ms: 8_000,
            maximum_attempts: 3,
            wait_ms: 30_000,
        }
    }
}
