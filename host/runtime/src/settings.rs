//! The runtime's settings, as the configuration file spells them (`runtime.engine`,
//! `runtime.limits`), and [`InvalidSetting`], the error every crate's settings check returns.

use serde::{Deserialize, Serialize};

use crate::{ActivityLimits, EngineConfig};

/// A setting that parses but makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct InvalidSetting {
    /// Dotted key path in the configuration file.
    pub key: &'static str,
    /// What was expected.
    pub reason: String,
}

impl InvalidSetting {
    /// `key` is wrong because `reason`.
    pub fn new(key: &'static str, reason: impl Into<String>) -> Self {
        Self {
            key,
            reason: reason.into(),
        }
    }

    /// Refuses the first of `values` that is zero.
    pub fn at_least_one(values: &[(&'static str, u64)]) -> Result<(), Self> {
        match values.iter().find(|(_, v)| *v == 0) {
            Some((key, _)) => Err(Self::new(key, "must be at least 1")),
            None => Ok(()),
        }
    }
}

/// `runtime`: the engine and the default limits of a deploy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSettings {
    /// Engine-wide settings (apply at restart).
    pub engine: EngineConfig,
    /// Limits of a deploy that sets none (fixed per version when it is deployed).
    pub limits: ActivityLimits,
    /// What outgoing HTTP may reach, host-wide (apply at restart).
    pub egress: crate::egress::EgressSettings,
    /// Directory of the compiled-component cache; `None`: the host's default (under its data
    /// directory). Entries are keyed by component digest under a directory per engine
    /// compatibility hash and written whole then renamed, so hosts may share one directory.
    pub compiled_cache_dir: Option<std::path::PathBuf>,
    /// The most memory the calls in flight may be limited to together, in bytes: a call
    /// reserves its `max_memory_bytes` before it runs, and waits (then fails retryably) while
    /// the budget is taken. `None`: three quarters of the container's memory limit (its
    /// cgroup's), or no budget outside a container; 0: no budget.
    pub memory_budget_bytes: Option<u64>,
    /// What any deploy may grant beyond outgoing hosts: key-value stores, secrets, the
    /// longest time limit (`runtime.policy`).
    pub policy: crate::grants::GrantPolicy,
}

impl RuntimeSettings {
    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        let (e, l) = (&self.engine, &self.limits);
        InvalidSetting::at_least_one(&[
            ("runtime.engine.max_instances", u64::from(e.max_instances)),
            ("runtime.engine.epoch_tick_ms", e.epoch_tick_ms),
        ])?;
        if l.max_memory_bytes > e.max_memory_bytes_ceiling {
            return Err(InvalidSetting::new(
                "runtime.limits.max_memory_bytes",
                format!(
                    "must not exceed runtime.engine.max_memory_bytes_ceiling ({})",
                    e.max_memory_bytes_ceiling
                ),
            ));
        }
        InvalidSetting::at_least_one(&[("runtime.limits.max_execution_ms", l.max_execution_ms)])
    }

    /// The memory budget in effect: the setting, else the container's default; `None`: no
    /// budget.
    pub fn memory_budget(&self) -> Option<u64> {
        match self.memory_budget_bytes {
            Some(0) => None,
            Some(bytes) => Some(bytes),
            None => crate::budget::default_budget(),
        }
    }
}
