//! The worker's test harness: a real dev server, the real component runtime with the
//! reference activities, and a host worker on its own task queue.
#![allow(dead_code)]

use std::sync::Arc;

use activity_runtime::{ActivitySpec, Runtime, RuntimeConfig};
use activity_sqlite::SqliteKeyValue;
use activity_worker::{ActivityTable, HostWorker, TemporalSettings, WorkerSettings};
use temporalio_client::Client;
use test_support::{DevServer, HttpSink};
use tokio::sync::oneshot;

pub use test_support::caller;

/// Everything a worker test needs; stops the worker and the server when dropped.
pub struct Harness {
    pub server: DevServer,
    pub client: Client,
    pub task_queue: String,
    pub table: Arc<ActivityTable>,
    pub runtime: Arc<Runtime>,
    pub store: Arc<SqliteKeyValue>,
    pub sink: HttpSink,
    stop: Option<oneshot::Sender<()>>,
    worker: Option<std::thread::JoinHandle<()>>,
}

/// The reference activities' specs, SendNotification posting to `webhook`.
pub fn reference_spec(activity_type: &str, webhook: &str) -> ActivitySpec {
    let mut spec = ActivitySpec::new(activity_type);
    match activity_type {
        "CreateUser" | "UpdateUser" | "DeleteUser" => {
            spec.grants.key_value_stores = vec!["users".into()]
        }
        "SendNotification" => {
            let authority = webhook
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap_or_default();
            spec.grants.allowed_hosts = vec![authority.to_string()];
            spec.grants.key_value_stores = vec!["notifications".into()];
            spec.grants
                .config
                .insert("webhook_url".into(), webhook.into());
        }
        _ => {}
    }
    spec
}

impl Harness {
    /// Starts a dev server, loads the reference activities and runs a worker.
    pub async fn start() -> Self {
        Self::start_with(WorkerSettings::default()).await
    }

    /// Like [`Harness::start`] with the given worker settings (faster retries for tests).
    pub async fn start_with(mut settings: WorkerSettings) -> Self {
        let server = tokio::task::spawn_blocking(DevServer::start)
            .await
            .unwrap()
            .expect("dev server");
        let sink = HttpSink::start(200).await;
        let store = Arc::new(SqliteKeyValue::in_memory().unwrap());
        let mut config = RuntimeConfig::default();
        config.engine.max_instances = 64;
        let runtime = Arc::new(Runtime::new(&config).unwrap().with_key_value(store.clone()));
        let table = Arc::new(ActivityTable::default());
        for (name, path) in test_components::REFERENCE_ACTIVITIES {
            let spec = reference_spec(name, &sink.url("/notify"));
            let component = runtime
                .load(spec, &test_components::read(path))
                .await
                .unwrap();
            table.insert(component);
        }
        let task_queue = format!("host-{}", test_support::free_port());
        let client = activity_worker::connect(&server.address, "default")
            .await
            .expect("connect");
        let temporal = TemporalSettings::new(server.address.clone(), "default", task_queue.clone());
        settings.user_workflow.initial_interval_ms = 100;
        settings.user_workflow.maximum_interval_ms = 500;
        let (stop, stopped) = oneshot::channel();
        let worker = test_support::run_on_own_runtime({
            let (runtime, table) = (runtime.clone(), table.clone());
            move || async move {
                let client = activity_worker::connect(&temporal.address, &temporal.namespace)
                    .await
                    .expect("connect");
                let core = activity_worker::core_runtime().unwrap();
                let worker =
                    HostWorker::new(&core, client, &temporal, &settings, runtime, table).unwrap();
                worker
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("worker run");
            }
        });
        Self {
            server,
            client,
            task_queue,
            table,
            runtime,
            store,
            sink,
            stop: Some(stop),
            worker: Some(worker),
        }
    }

    /// Loads a component into the catalog as `spec`.
    pub async fn deploy(&self, spec: ActivitySpec, path: &str) {
        let component = self
            .runtime
            .load(spec, &test_components::read(path))
            .await
            .unwrap();
        self.table.insert(component);
    }

    /// The stored user, as JSON.
    pub fn stored_user(&self, user_id: &str) -> Option<serde_json::Value> {
        use activity_runtime::KeyValueBackend;
        self.store
            .get("users", &format!("user:{user_id}"))
            .unwrap()
            .map(|b| serde_json::from_slice(&b).unwrap())
    }

    /// Stops the worker and waits for it.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(w) = self.worker.take() {
            tokio::task::spawn_blocking(move || w.join())
                .await
                .unwrap()
                .expect("worker stops cleanly");
        }
    }
}
