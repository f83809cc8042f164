//! Assembles the host's parts from the configuration and runs them until shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use activity_api::{ClientSlot, Readiness};
use activity_registry::{
    DeployRequest, FleetStore, LedgerStore, Registry, RegistryStore, StorageBackend,
};
use activity_runtime::{KeyValueBackend, Runtime, RuntimeConfig};
use activity_sqlite::{SqliteKeyValue, SqliteRegistryStore};
use activity_worker::HostWorker;
use tokio::sync::watch;

use crate::config::Config;
use crate::reference;

pub use crate::host_error::HostError;

/// How often a host of a fleet records what it serves.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// This host's id in the fleet table: host name, process id and API address (hosts in one
/// process, as in tests, stay apart).
fn host_id(api: &str) -> String {
    let name = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "host".into());
    format!("{name}-{}-{api}", std::process::id())
}

/// Runs `tick` every `period` (a late tick waits, never bursts) for the life of the process,
/// logging its failures with `failed`.
fn every<F, Fut, E>(period: Duration, failed: &'static str, mut tick: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), E>> + Send,
    E: std::fmt::Display,
{
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Err(e) = tick().await {
                tracing::warn!(error = %e, "{failed}");
            }
        }
    });
}

/// The parts every role shares.
#[derive(Clone)]
pub struct Host {
    /// The configuration.
    pub config: Config,
    /// The key-value stores (users, notifications).
    pub store: Arc<dyn KeyValueBackend>,
    /// The component runtime.
    pub runtime: Arc<Runtime>,
    /// The module registry: the activity types this host serves.
    pub registry: Arc<Registry>,
    /// What `/readyz` reports.
    pub readiness: Arc<Readiness>,
    /// Pulls OCI artifacts for deploys by reference (API, watched directory).
    pub oci: Arc<activity_oci::OciClient>,
    /// API keys and secrets.
    pub access: Arc<dyn activity_registry::access::AccessStore>,
    /// The key secrets are sealed with.
    pub secrets_key: Option<Arc<activity_registry::access::SecretsKey>>,
    /// One Temporal connection for the worker and the REST API of this process: a start
    /// through the API can then ask for eager execution, and the worker of the same
    /// connection takes the first workflow task from the start's answer.
    temporal: Arc<tokio::sync::OnceCell<temporalio_client::Client>>,
}

impl Host {
    /// Opens the data directory and the stores (SQLite files, or the shared PostgreSQL
    /// database with `registry.backend: postgres`), and builds the runtime.
    pub async fn open(config: Config) -> Result<Self, HostError> {
        Self::open_with(config, true).await
    }

    /// Like [`Host::open`] for a host that never runs an activity (the `server` role): the
    /// registry describes versions by their stored signatures instead of compiling them.
    pub async fn open_without_execution(config: Config) -> Result<Self, HostError> {
        Self::open_with(config, false).await
    }

    async fn open_with(config: Config, executes: bool) -> Result<Self, HostError> {
        // Before anything records: the recorder is process-wide.
        activity_api::observe::prometheus();
        let storage =
            |what, path: &std::path::Path, e: &dyn std::fmt::Display| HostError::Storage {
                what,
                path: path.display().to_string(),
                message: e.to_string(),
            };
        std::fs::create_dir_all(&config.data_dir.0)
            .map_err(|e| storage("data directory", &config.data_dir.0, &e))?;
        // One pool serves whichever of the registry and the key-value stores is in PostgreSQL.
        let pool = if config.registry.uses(StorageBackend::Postgres) {
            let url = config.registry.postgres_url.clone().unwrap_or_default();
            let shown = config.masked_postgres_url().unwrap_or_default();
            Some(
                activity_postgres::connect_with(
                    &url,
                    config.registry.postgres_pool_size,
                    Duration::from_millis(config.registry.postgres_statement_timeout_ms),
                )
                .await
                .map_err(|e| storage("PostgreSQL database", std::path::Path::new(&shown), &e))?,
            )
        } else {
            None
        };
        // The registry and the hosts table live together: SQLite for the processes sharing
        // one data directory, PostgreSQL for a fleet.
        type Stores = (
            Arc<dyn RegistryStore>,
            Arc<dyn FleetStore>,
            Arc<dyn activity_registry::access::AccessStore>,
            Arc<dyn LedgerStore>,
        );
        let (registry_store, fleet, access, ledger): Stores = match (config.registry.backend, &pool)
        {
            (StorageBackend::Postgres, Some(pool)) => (
                Arc::new(activity_postgres::PostgresRegistryStore::new(pool.clone())),
                Arc::new(activity_postgres::PostgresFleet::new(pool.clone())),
                Arc::new(activity_postgres::PostgresAccess::new(pool.clone())),
                Arc::new(activity_postgres::PostgresLedger::new(pool.clone())),
            ),
            _ => {
                let index = config.registry_index_path();
                let sqlite = SqliteRegistryStore::open(&index, &config.modules_dir())
                    .map_err(|e| storage("registry", &index, &e))?;
                let sqlite = Arc::new(sqlite);
                (sqlite.clone(), sqlite.clone(), sqlite.clone(), sqlite)
            }
        };
        let store: Arc<dyn KeyValueBackend> = match (config.registry.keyvalue(), &pool) {
            (StorageBackend::Postgres, Some(pool)) => {
                Arc::new(activity_postgres::PostgresKeyValue::new(pool.clone()))
            }
            _ => Arc::new(
                SqliteKeyValue::open(&config.store_path())
                    .map_err(|e| storage("store", &config.store_path(), &e))?,
            ),
        };
        let runtime = Runtime::new(&RuntimeConfig {
            engine: config.runtime.engine.clone(),
            cache_dir: Some(config.compiled_cache_dir()),
        })?
        .with_key_value(store.clone())
        .with_memory_budget(config.runtime.memory_budget())
        .with_egress(Arc::new(activity_runtime::egress::Egress::new({
            // The webhook the operator configured is inside the host's policy.
            let mut egress = config.runtime.egress.clone();
            if config.notifications.webhook_url.is_some() {
                egress.allowed_hosts.extend(crate::reference::webhook_hosts(
                    config.notifications.webhook_url.as_deref(),
                ));
            }
            egress
        })));
        let runtime = Arc::new(runtime);
        let secrets_key = config
            .registry
            .secrets_key()
            .map_err(|e| HostError::Registry(e.to_string()))?
            .map(Arc::new);
        let mut registry = Registry::new(
            registry_store,
            runtime.clone(),
            config.registry.max_component_bytes,
        )
        .with_rollout(config.registry.rollout.clone())
        .with_grant_policy(config.runtime.policy.clone())
        .with_ledger(ledger, host_id(&config.api.listen), config.registry.usage)
        .with_fleet(fleet)
        .with_access(access.clone(), secrets_key.clone());
        if !executes {
            registry = registry.without_execution();
        }
        let registry = Arc::new(registry);
        let oci = Arc::new(activity_oci::OciClient::new(config.oci.clone()));
        Ok(Self {
            config,
            store,
            runtime,
            registry,
            access,
            secrets_key,
            readiness: Arc::default(),
            oci,
            temporal: Arc::default(),
        })
    }

    /// The process's Temporal client, connected (retrying until Temporal answers) by
    /// whichever role asks first; an error only when retrying cannot help (a TLS setting or
    /// certificate is wrong).
    pub async fn temporal_client(
        &self,
    ) -> Result<temporalio_client::Client, activity_worker::WorkerError> {
        self.temporal
            .get_or_try_init(|| connect_with_retry(&self.config.workflow.temporal))
            .await
            .cloned()
    }

    /// What the Temporal server is and can do, said in the log (a warning for what this host
    /// cannot do on it); `None` when it does not tell.
    async fn server_facts(
        &self,
        client: &temporalio_client::Client,
    ) -> Option<activity_worker::server::ServerFacts> {
        let namespace = &self.config.workflow.temporal.namespace;
        match activity_worker::server::ServerFacts::read(client, namespace).await {
            Ok(facts) => {
                tracing::info!(
                    server_version = facts.version.as_str(),
                    namespace = namespace.as_str(),
                    standalone_activities = facts.standalone_activities,
                    "Temporal server"
                );
                if let Some(why) = facts.standalone_activities_missing() {
                    tracing::warn!(
                        "{why}: POST /api/v1/activities/{{name}}/invoke answers 501 \
                         standalone_activities_unavailable; workflows are not affected"
                    );
                }
                Some(facts)
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read what the Temporal server can do");
                None
            }
        }
    }

    /// Serves every deployed activity's active version at once and loads them in the
    /// background (each from a compiled cache when it can; a call arriving first loads its
    /// own), keeps re-reading the store every `registry.reconcile_ms`, and watches
    /// `activities.watch_dir` when set.
    pub async fn start_registry(&self) -> Result<(), HostError> {
        self.registry.reload_secrets().await;
        let failures = self
            .registry
            .open()
            .await
            .map_err(|e| HostError::Registry(e.to_string()))?;
        for f in failures {
            tracing::error!(error = %f, "a deployed activity is not served");
        }
        self.readiness
            .registry_loaded
            .store(true, Ordering::Relaxed);
        let registry = self.registry.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let failures = registry.warm_up().await;
            tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                failed = failures.len(),
                "every served activity loaded"
            );
        });
        {
            // The fleet table: who is alive and which digest each serves (processes sharing
            // one SQLite data directory, or every host of a PostgreSQL fleet).
            let (registry, api) = (self.registry.clone(), self.config.api.listen.clone());
            let host_id = host_id(&api);
            let started_at_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            every(HEARTBEAT, "fleet heartbeat failed", move || {
                let (registry, host_id, api) = (registry.clone(), host_id.clone(), api.clone());
                async move {
                    // Once a second: a store outage is told by the other loops at warn.
                    if let Err(e) = registry.heartbeat(&host_id, &api, started_at_ms).await {
                        tracing::debug!(error = %e, "fleet heartbeat failed");
                    }
                    Ok::<_, std::convert::Infallible>(())
                }
            });
        }
        if self.config.registry.backend == StorageBackend::Postgres {
            // Deploys through any host arrive at once; the interval below is the safety net.
            let (tx, mut changed) = tokio::sync::mpsc::channel(64);
            let url = self
                .config
                .registry
                .postgres_url
                .clone()
                .unwrap_or_default();
            tokio::spawn(activity_postgres::listen(url, tx));
            let registry = self.registry.clone();
            tokio::spawn(async move {
                while let Some(activity) = changed.recv().await {
                    // A burst of changes needs one reconcile.
                    while changed.try_recv().is_ok() {}
                    tracing::debug!(?activity, "registry change notified");
                    if let Err(e) = registry.reconcile().await {
                        tracing::warn!(error = %e, "registry reconcile failed");
                    }
                }
            });
        }
        let registry = self.registry.clone();
        every(
            Duration::from_millis(self.config.registry.usage.flush_ms),
            "usage not written; kept for the next flush",
            move || {
                let registry = registry.clone();
                async move { registry.flush_ledger().await }
            },
        );
        let registry = self.registry.clone();
        every(
            Duration::from_millis(self.config.registry.reconcile_ms),
            "registry reconcile failed",
            move || {
                let registry = registry.clone();
                async move { registry.reconcile().await.map(drop) }
            },
        );
        if let Some(dir) = &self.config.activities.watch_dir {
            std::fs::create_dir_all(dir).map_err(|e| HostError::Storage {
                what: "watched directory",
                path: dir.display().to_string(),
                message: e.to_string(),
            })?;
            tokio::spawn(crate::watch::watch(
                self.registry.clone(),
                self.oci.clone(),
                dir.clone(),
                Duration::from_millis(self.config.activities.watch_interval_ms),
                self.config.runtime.limits,
            ));
        }
        Ok(())
    }

    /// Deploys the reference activities from `activities.components_dir` (a no-op for those
    /// already active with the same bytes and grants).
    pub async fn deploy_reference_activities(&self) -> Result<(), HostError> {
        let webhook = self.config.notifications.webhook_url.as_deref();
        if webhook.is_none() {
            tracing::info!("no notifications.webhook_url: notifications are recorded by the host (GET /api/v1/notifications)");
        }
        for (name, file) in reference::REFERENCE_ACTIVITIES {
            let path = self.config.activities.components_dir.join(file);
            let bytes = std::fs::read(&path).map_err(|e| HostError::Reference {
                name: name.to_string(),
                message: format!(
                    "read {}: {e} (build the guests with `make guests`)",
                    path.display()
                ),
            })?;
            let spec = reference::spec(name, webhook);
            let request = DeployRequest {
                export: spec.export,
                grants: spec.grants,
                limits: self.config.runtime.limits,
                deployed_by: "dev".into(),
                source: None,
                // The configured policy: with `pinned`, runs pin the reference activities too.
                rollout: None,
                ramp_percent: None,
            };
            let outcome = self
                .registry
                .deploy(name, bytes, request)
                .await
                .map_err(|e| HostError::Reference {
                    name: name.to_string(),
                    message: e.to_string(),
                })?;
            tracing::info!(activity = name, version = %outcome.version.digest, changed = outcome.changed, "reference activity deployed");
        }
        Ok(())
    }

    /// Runs the Temporal worker until `shutdown` changes. Runs on the calling thread: the
    /// SDK's workflow half is not `Send`. A worker that stops with an error is recorded for
    /// `/healthz`, which then answers 503.
    pub async fn run_worker(&self, shutdown: watch::Receiver<bool>) -> Result<(), HostError> {
        let outcome = self.poll_until(shutdown).await;
        // The calls finished: what they cost is written before the process ends.
        if let Err(e) = self.registry.flush_ledger().await {
            tracing::warn!(error = %e, "usage of the last calls not written");
        }
        if let Err(e) = &outcome {
            tracing::error!(error = %e, "the worker stopped for good");
            *self
                .readiness
                .worker_failed
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
        }
        outcome
    }

    async fn poll_until(&self, mut shutdown: watch::Receiver<bool>) -> Result<(), HostError> {
        let (temporal, settings) = (&self.config.workflow.temporal, &self.config.worker);
        self.readiness
            .worker_expected
            .store(true, Ordering::Relaxed);
        let client = tokio::select! {
            c = self.temporal_client() => c?,
            _ = shutdown.wait_for(|s| *s) => return Ok(()),
        };
        let core = activity_worker::core_runtime()?;
        let worker = HostWorker::new(
            &core,
            client,
            temporal,
            settings,
            self.runtime.clone(),
            self.registry.clone(),
        )?;
        tracing::info!(
            task_queue = temporal.task_queue.as_str(),
            namespace = temporal.namespace.as_str(),
            "worker polling"
        );
        self.readiness.worker_polling.store(true, Ordering::Relaxed);
        let outcome = worker
            .run(async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            })
            .await;
        self.readiness
            .worker_polling
            .store(false, Ordering::Relaxed);
        outcome?;
        Ok(())
    }

    /// Serves the REST API until `shutdown` changes, finishing requests in flight.
    pub async fn serve_api(&self, shutdown: watch::Receiver<bool>) -> Result<(), HostError> {
        self.serve(shutdown, false).await
    }

    /// Serves only `/healthz`, `/readyz` and `/metrics` on `api.listen` until `shutdown`
    /// changes: what a worker-only process offers its orchestrator.
    pub async fn serve_ops(&self, shutdown: watch::Receiver<bool>) -> Result<(), HostError> {
        self.serve(shutdown, true).await
    }

    async fn serve(
        &self,
        mut shutdown: watch::Receiver<bool>,
        ops_only: bool,
    ) -> Result<(), HostError> {
        let address = self.config.api.listen.clone();
        let api_error = |message: String| HostError::Api {
            address: address.clone(),
            message,
        };
        let t = &self.config.workflow.temporal;
        let client = ClientSlot::default();
        // The API serves while Temporal does not answer yet; a connection that can never
        // succeed (TLS refused) stops it, with the reason.
        let (failed_tx, failed_rx) = tokio::sync::oneshot::channel();
        {
            let (slot, host) = (client.clone(), self.clone());
            let mut stop = shutdown.clone();
            tokio::spawn(async move {
                let connected = tokio::select! {
                    c = host.temporal_client() => c,
                    _ = stop.wait_for(|s| *s) => return,
                };
                match connected {
                    Ok(c) => {
                        slot.set(c.clone());
                        if let Some(facts) = host.server_facts(&c).await {
                            slot.set_server(facts);
                        }
                        let (t, every) = (
                            &host.config.workflow.temporal,
                            host.config.worker.backlog_poll_ms,
                        );
                        if every > 0 {
                            let backlog = activity_worker::backlog::watch(
                                c,
                                t.namespace.clone(),
                                t.task_queue.clone(),
                                Duration::from_millis(every),
                            );
                            tokio::select! {
                                _ = backlog => {}
                                _ = stop.wait_for(|s| *s) => {}
                            }
                        }
                    }
                    Err(e) => {
                        let _ = failed_tx.send(e);
                    }
                }
            });
        }
        let state = activity_api::ApiState {
            client,
            settings: self.config.api.clone(),
            temporal: t.clone(),
            readiness: self.readiness.clone(),
            store: self.store.clone(),
            registry: self.registry.clone(),
            oci: self.oci.clone(),
            default_limits: self.config.runtime.limits,
            metrics: activity_api::observe::prometheus(),
            keys: Some(Arc::new(activity_api::auth::KeyCache::new(
                self.access.clone(),
            ))),
            rates: Arc::default(),
            secrets_key: self.secrets_key.clone(),
        };
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .map_err(|e| api_error(e.to_string()))?;
        let listener =
            activity_api::listener::CappedListener::new(listener, self.config.api.max_connections);
        tracing::info!(address = address.as_str(), ops_only, "HTTP listening");
        let router = if ops_only {
            activity_api::ops_router(state)
        } else {
            activity_api::router(state)
        };
        let failure = Arc::new(std::sync::Mutex::new(None));
        let failed = failure.clone();
        let header_read_timeout = Duration::from_millis(self.config.api.header_read_timeout_ms);
        activity_api::listener::serve(listener, router, header_read_timeout, async move {
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => {}
                Ok(e) = failed_rx => {
                    *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                }
            }
        })
        .await;
        let failure = failure.lock().unwrap_or_else(|p| p.into_inner()).take();
        failure.map_or(Ok(()), |e| Err(e.into()))
    }
}

/// Connects to Temporal as `settings` say, retrying with backoff (200 ms doubling up to
/// 10 s apart) until it answers; gives up only on what retrying cannot mend (a TLS setting
/// or certificate), with the reason.
pub async fn connect_with_retry(
    settings: &activity_worker::TemporalSettings,
) -> Result<temporalio_client::Client, activity_worker::WorkerError> {
    use backon::Retryable;
    let backoff = backon::ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(10))
        .without_max_times();
    let connect = || activity_worker::connect_to(settings);
    connect
        .retry(backoff)
        .when(|e| !e.is_permanent())
        .notify(|e, pause| {
            tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "Temporal does not answer yet");
        })
        .await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
