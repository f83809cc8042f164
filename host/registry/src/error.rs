//! Why a registry operation failed.

use activity_runtime::{ComponentDigest, LoadError};

use crate::StoreError;

/// Why a registry operation failed. Each maps to one HTTP status in the API.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The name is not a valid activity type name.
    #[error("invalid activity type name {0:?}: use 1 to 255 letters, digits, '_', '-' or '.'")]
    InvalidName(String),
    /// No bytes.
    #[error("the component is empty")]
    Empty,
    /// Over the size limit.
    #[error("the component is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The runtime refused it.
    #[error(transparent)]
    Refused(#[from] LoadError),
    /// The grants ask for more than the host's egress policy allows.
    #[error("{0}")]
    OutsidePolicy(String),
    /// The grants or limits ask for more than the host's `runtime.policy` allows.
    #[error("{0}")]
    OutsideGrantPolicy(String),
    /// A granted secret is not set.
    #[error("secret {0:?} is not set: set it with PUT /api/v1/secrets/{0} first")]
    NoSuchSecret(String),
    /// No such activity type.
    #[error("activity type {0:?} is not deployed")]
    NotFound(String),
    /// No such version.
    #[error("activity type {name:?} has no version {digest}")]
    VersionNotFound {
        /// Activity type.
        name: String,
        /// The digest asked for.
        digest: String,
    },
    /// Nothing to roll back to.
    #[error("activity type {0:?} has no earlier version to roll back to")]
    NoEarlierVersion(String),
    /// Promote, abort or ramp with no candidate.
    #[error("activity type {0:?} has no candidate version: deploy one with rollout=ramp")]
    NoCandidate(String),
    /// A ramp share outside 0..=100.
    #[error("ramp percent {0} is outside 0..100")]
    InvalidRamp(u64),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored component went missing or no longer loads.
    #[error("stored version {digest} of {name:?} cannot be loaded: {message}")]
    Stored {
        /// Activity type.
        name: String,
        /// Digest.
        digest: ComponentDigest,
        /// Why.
        message: String,
    },
}
