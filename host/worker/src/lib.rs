//! The Temporal worker of the activity host: native workflows from the Rust SDK, and every
//! activity type dispatched by name to a WebAssembly component.
//!
//! One core worker (temporalio-sdk-core) serves both halves, so the server can hand
//! activity tasks back eagerly with a workflow task's completion. The SDK's high-level
//! worker is built on it with only the workflows registered, and never polls activities;
//! [`activities::run`] polls them from the same core worker and dispatches each by its type
//! to the component runtime through an [`ActivityCatalog`], so types deployed after start
//! are served without a restart.

pub mod activities;
pub mod backlog;
pub mod billing;
pub mod connection;
pub mod heartbeats;
pub mod payload;
pub mod probe;
pub mod server;
pub mod settings;
pub mod workflow;

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;

use activity_runtime::Runtime as ComponentRuntime;
use temporalio_client::NamespacedClient;
use temporalio_client::{Client, Url};
use temporalio_common::worker::WorkerTaskTypes;
use temporalio_sdk::runtime::worker_tuner::{FixedSizeSlotSupplier, TunerHolder};
use temporalio_sdk::runtime::PollerBehavior;
use temporalio_sdk::{Worker, WorkerOptions};
use temporalio_sdk_core::{init_worker, CoreRuntime, RuntimeOptions};

pub use activity_runtime::{ActivityCatalog, ActivityTable};
pub use connection::{connect, connect_to};
pub use settings::{ActivityCallSettings, TemporalSettings, WorkerSettings};
pub use workflow::{ActivityMode, UserWorkflow};

/// Why the worker could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The Temporal address is not a valid URL.
    #[error("invalid Temporal address {address:?}: {message}")]
    Address {
        /// The address.
        address: String,
        /// Why.
        message: String,
    },
    /// Temporal did not answer.
    #[error("cannot connect to Temporal at {address}: {message}")]
    Connect {
        /// The address.
        address: String,
        /// Why.
        message: String,
    },
    /// The TLS settings cannot be used (a file missing, unreadable or not PEM, a key that
    /// does not match its certificate).
    #[error("TLS to Temporal: {0}")]
    Tls(String),
    /// The TLS handshake with the frontend failed: a certificate refused either way.
    #[error("TLS with Temporal at {address} failed: {message}")]
    TlsRefused {
        /// The address.
        address: String,
        /// Why, with what to check.
        message: String,
    },
    /// The SDK refused the configuration.
    #[error("cannot create the Temporal worker: {0}")]
    Create(String),
    /// The worker stopped with an error.
    #[error("the Temporal worker failed: {0}")]
    Run(String),
}

impl WorkerError {
    /// Whether trying again cannot help: the settings or a certificate are wrong, not the
    /// network or the server's state.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::Address { .. } | Self::Tls(_) | Self::TlsRefused { .. }
        )
    }
}

/// `http://host:port` from `host:port` (URLs are taken as they are).
pub fn temporal_url(address: &str) -> Result<Url, WorkerError> {
    let text = if address.contains("://") {
        address.to_string()
    } else {
        format!("http://{address}")
    };
    Url::from_str(&text).map_err(|e| WorkerError::Address {
        address: address.into(),
        message: e.to_string(),
    })
}

/// The Temporal core runtime (telemetry, worker heartbeats) on the current tokio runtime.
pub fn core_runtime() -> Result<CoreRuntime, WorkerError> {
    CoreRuntime::new_assume_tokio(RuntimeOptions::default())
        .map_err(|e| WorkerError::Create(format!("{e:#}")))
}

/// The worker: native workflows and WASM activities on one core worker.
pub struct HostWorker {
    sdk: Worker,
    dispatcher: Arc<activities::Dispatcher>,
}

impl HostWorker {
    /// Builds the worker; nothing polls until [`HostWorker::run`].
    pub fn new(
        core_runtime: &CoreRuntime,
        client: Client,
        temporal: &TemporalSettings,
        settings: &WorkerSettings,
        components: Arc<ComponentRuntime>,
        catalog: Arc<dyn ActivityCatalog>,
    ) -> Result<Self, WorkerError> {
        let user_settings = settings.user_workflow.clone();
        let tuner = TunerHolder::builder()
            .workflow_task_slot_supplier(FixedSizeSlotSupplier::new(
                settings.max_concurrent_workflow_tasks,
            ))
            .activity_task_slot_supplier(FixedSizeSlotSupplier::new(
                settings.max_concurrent_activities,
            ))
            // Local activities (UserWorkflow's in-process mode) run in the same sandbox and
            // share the host's capacity for activities.
            .local_activity_task_slot_supplier(FixedSizeSlotSupplier::new(
                settings.max_concurrent_activities,
            ))
            .nexus_task_slot_supplier(FixedSizeSlotSupplier::new(1))
            .build();
        let options = WorkerOptions::new(temporal.task_queue.clone())
            .register_workflow_with_factory::<UserWorkflow, _>(move || {
                UserWorkflow::with_settings(user_settings.clone())
            })
            .map_err(|e| WorkerError::Create(e.to_string()))?
            .max_cached_workflows(settings.max_cached_workflows)
            .workflow_task_poller_behavior(PollerBehavior::SimpleMaximum(settings.workflow_pollers))
            .activity_task_poller_behavior(PollerBehavior::SimpleMaximum(settings.activity_pollers))
            .maybe_max_task_queue_activities_per_second(
                settings.max_task_queue_activities_per_second,
            )
            .maybe_max_worker_activities_per_second(settings.max_worker_activities_per_second)
            .tuner(tuner)
            .max_eager_activity_reservations_per_workflow_task(
                settings.max_eager_activities_per_workflow_task,
            )
            .graceful_shutdown_period(settings.graceful_shutdown())
            .build();
        let mut core_config = options
            .to_core_options(client.namespace(), client.identity())
            .map_err(WorkerError::Create)?;
        // The SDK derives task types from what is registered; activities are ours.
        core_config.task_types = WorkerTaskTypes {
            enable_workflows: true,
            enable_local_activities: true,
            enable_remote_activities: true,
            enable_nexus: false,
        };
        let core = Arc::new(
            init_worker(core_runtime, core_config, client.connection().clone())
                .map_err(|e| WorkerError::Create(format!("{e:#}")))?,
        );
        let dispatcher = Arc::new(activities::Dispatcher::new(
            core.clone(),
            components,
            catalog,
            temporal.namespace.clone(),
            temporal.task_queue.clone(),
            settings.cancel_grace(),
            settings.max_concurrent_activities,
        ));
        let sdk = Worker::new_from_core_options(core, client.options().clone(), options)
            .map_err(|e| WorkerError::Create(e.to_string()))?;
        Ok(Self { sdk, dispatcher })
    }

    /// Runs both halves until `shutdown` resolves, then drains: no new tasks, running
    /// activities finish (or time out), workflow tasks complete.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), WorkerError> {
        let stop = self.sdk.shutdown_handle();
        let activities = tokio::spawn(activities::run(self.dispatcher.clone()));
        let workflows = self.sdk.run();
        tokio::pin!(workflows);
        tokio::pin!(shutdown);
        let result = tokio::select! {
            r = &mut workflows => r,
            () = &mut shutdown => {
                tracing::info!("shutting down the worker");
                stop();
                workflows.await
            }
        };
        stop();
        let _ = activities.await;
        result.map_err(|e| WorkerError::Run(format!("{e:#}")))
    }
}
