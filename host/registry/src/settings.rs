//! The registry's settings, as the configuration file spells them (`registry`), with their
//! defaults. The host's `Config` embeds them; nothing copies their fields.

use activity_runtime::InvalidSetting;
use serde::{Deserialize, Serialize};

use crate::rollout::{AutoAbort, RolloutPolicy};

/// `registry`: limits, reconciliation and where the stores live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrySettings {
    /// Largest component accepted by a deploy, in bytes.
    pub max_component_bytes: usize,
    /// How often a host re-reads the active versions from the store, in milliseconds, to
    /// pick up deploys made through another host.
    pub reconcile_ms: u64,
    /// Where the registry (and, by default, the key-value stores) live.
    pub backend: StorageBackend,
    /// Where the key-value stores (`wasi:keyvalue`, the users store among them) live; `None`:
    /// where `backend` puts the registry.
    pub keyvalue_backend: Option<StorageBackend>,
    /// PostgreSQL connection URL (`postgres://user:password@host:5432/db`), with
    /// `backend: postgres` or `keyvalue_backend: postgres`.
    pub postgres_url: Option<String>,
    /// Connections in the PostgreSQL pool.
    pub postgres_pool_size: usize,
    /// Longest a PostgreSQL statement runs, or waits for a lock, before the server cancels it
    /// (milliseconds; the URL's `options` may set its own).
    pub postgres_statement_timeout_ms: u64,
    /// How deploys reach calls (`registry.rollout`).
    pub rollout: RolloutSettings,
    /// What calls cost, kept in the store (`registry.usage`).
    pub usage: crate::ledger::UsageSettings,
    /// The key secrets are sealed with: 64 hex digits (32 bytes); set it through the
    /// environment (`ACTIVITY_HOST_REGISTRY__SECRETS_KEY`), not the file. Every host of a
    /// fleet needs the same one.
    pub secrets_key: Option<String>,
    /// A file holding the secrets key (a mounted secret), read at start.
    pub secrets_key_file: Option<std::path::PathBuf>,
}

/// `registry.rollout`: the default policy of a deploy, the ramp, the automatic abort and
/// how long pins are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RolloutSettings {
    /// The policy of a deploy that names none.
    pub policy: RolloutPolicy,
    /// The share of runs a ramped candidate gets when the deploy names none (0..=100).
    pub ramp_percent: u8,
    /// When a ramped candidate is aborted without a human.
    pub auto_abort: AutoAbort,
    /// Pins older than this are dropped, in milliseconds: keep it at least the namespace's
    /// retention plus the longest run.
    pub pin_ttl_ms: u64,
}

impl Default for RolloutSettings {
    fn default() -> Self {
        Self {
            policy: RolloutPolicy::Immediate,
            ramp_percent: 10,
            auto_abort: AutoAbort::default(),
            pin_ttl_ms: 30 * 24 * 3600 * 1000,
        }
    }
}

impl RolloutSettings {
    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if self.ramp_percent > 100 {
            return Err(InvalidSetting::new(
                "registry.rollout.ramp_percent",
                "must be between 0 and 100",
            ));
        }
        let rate = self.auto_abort.failure_rate;
        if !(rate > 0.0 && rate <= 1.0) {
            return Err(InvalidSetting::new(
                "registry.rollout.auto_abort.failure_rate",
                "must be above 0 and at most 1",
            ));
        }
        InvalidSetting::at_least_one(&[
            (
                "registry.rollout.auto_abort.min_calls",
                u64::from(self.auto_abort.min_calls),
            ),
            (
                "registry.rollout.auto_abort.window_ms",
                self.auto_abort.window_ms,
            ),
            ("registry.rollout.pin_ttl_ms", self.pin_ttl_ms),
        ])
    }
}

/// Where the registry and the key-value stores live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// SQLite files and a blob directory in `data_dir` (`activity-sqlite`): one host.
    Sqlite,
    /// A PostgreSQL database shared by a fleet of hosts (`activity-postgres`).
    Postgres,
}

impl RegistrySettings {
    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        InvalidSetting::at_least_one(&[
            (
                "registry.max_component_bytes",
                self.max_component_bytes as u64,
            ),
            (
                "registry.postgres_pool_size",
                self.postgres_pool_size as u64,
            ),
            (
                "registry.postgres_statement_timeout_ms",
                self.postgres_statement_timeout_ms,
            ),
            ("registry.reconcile_ms", self.reconcile_ms),
            ("registry.usage.flush_ms", self.usage.flush_ms),
            ("registry.usage.retention_ms", self.usage.retention_ms),
        ])?;
        self.rollout.validate()?;
        let no_url = self.postgres_url.as_deref().unwrap_or("").is_empty();
        if self.uses(StorageBackend::Postgres) && no_url {
            return Err(InvalidSetting::new(
                "registry.postgres_url",
                "is required with registry.backend or registry.keyvalue_backend: postgres",
            ));
        }
        if let Some(key) = self.secrets_key.as_deref().filter(|k| !k.trim().is_empty()) {
            crate::access::SecretsKey::from_hex(key)
                .map_err(|e| InvalidSetting::new("registry.secrets_key", e.to_string()))?;
        }
        Ok(())
    }

    /// The secrets key: `secrets_key`, else the file's content, else none.
    pub fn secrets_key(&self) -> Result<Option<crate::access::SecretsKey>, InvalidSetting> {
        let key = self.secrets_key.as_ref().filter(|k| !k.trim().is_empty());
        let text = match (key, &self.secrets_key_file) {
            (Some(key), _) => key.clone(),
            (None, Some(path)) => std::fs::read_to_string(path).map_err(|e| {
                InvalidSetting::new(
                    "registry.secrets_key_file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?,
            (None, None) => return Ok(None),
        };
        crate::access::SecretsKey::from_hex(&text)
            .map(Some)
            .map_err(|e| InvalidSetting::new("registry.secrets_key", e.to_string()))
    }

    /// Where the key-value stores live: `keyvalue_backend`, else the registry's `backend`.
    pub fn keyvalue(&self) -> StorageBackend {
        self.keyvalue_backend.unwrap_or(self.backend)
    }

    /// True when the registry or the key-value stores use `backend`.
    pub fn uses(&self, backend: StorageBackend) -> bool {
        self.backend == backend || self.keyvalue() == backend
    }
}

impl Default for RegistrySettings {
    fn default() -> Self {
        Self {
            max_component_bytes: 50 << 20,
            reconcile_ms: 2000,
            backend: StorageBackend::Sqlite,
            keyvalue_backend: None,
            postgres_url: None,
            postgres_pool_size: 16,
            postgres_statement_timeout_ms: 10_000,
            rollout: RolloutSettings::default(),
            usage: crate::ledger::UsageSettings::default(),
            secrets_key: None,
            secrets_key_file: None,
        }
    }
}
