//! Why the host could not start or stopped.

use activity_runtime::RuntimeError;

/// Why the host could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The data directory or store could not be opened.
    #[error("{what} {path}: {message}")]
    Storage {
        /// What was opened.
        what: &'static str,
        /// Where.
        path: String,
        /// Why.
        message: String,
    },
    /// The component runtime could not start.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A reference component could not be read or loaded.
    #[error("reference activity {name}: {message}")]
    Reference {
        /// Activity type.
        name: String,
        /// Why.
        message: String,
    },
    /// The worker failed.
    #[error(transparent)]
    Worker(#[from] activity_worker::WorkerError),
    /// The registry could not be read.
    #[error("registry: {0}")]
    Registry(String),
    /// The API could not listen or serve.
    #[error("REST API on {address}: {message}")]
    Api {
        /// The listen address.
        address: String,
        /// Why.
        message: String,
    },
}
