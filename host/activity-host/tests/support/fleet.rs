//! Host processes of a fleet sharing one PostgreSQL registry, and a fleet of them on one
//! Temporal (the dev server or a cluster) with a caller worker beside.

use std::time::Duration;

use serde_json::Value;
use temporalio_client::grpc::WorkflowService;
use temporalio_client::tonic::IntoRequest;
use temporalio_client::{Client, WorkflowGetResultOptions, WorkflowStartOptions};
use temporalio_common::protos::temporal::api::common::v1::WorkflowExecution;
use temporalio_common::protos::temporal::api::enums::v1::EventType;
use temporalio_common::protos::temporal::api::workflowservice::v1::GetWorkflowExecutionHistoryRequest;
use test_support::caller::{CallRequest, CallResult, CallSeries, SeriesRequest};
use test_support::{eventually, DevServer, Postgres, TemporalCluster};

use super::get_json;

/// An `activity-host` process, killed (SIGKILL) when dropped.
pub struct HostProcess {
    pub child: std::process::Child,
    /// Its API (or, for a worker, its health and metrics endpoints).
    pub base: String,
    data: tempfile::TempDir,
}

impl HostProcess {
    /// Everything it wrote to stdout and stderr so far (its log, at the `RUST_LOG` given in
    /// its environment, `error` by default).
    pub fn logs(&self) -> String {
        ["stdout.log", "stderr.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.data.path().join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `kill -9`, and waits for it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `activity-host ROLE` as a process of its own on `pg` and the task queue `queue`, with a
/// data directory of its own; with `reference`, it deploys the reference activities at
/// start. Only notifications deliver deploys in time: the periodic reconcile is 10 min.
pub fn host_process(
    role: &str,
    reference: bool,
    pg: &Postgres,
    temporal: &str,
    queue: &str,
) -> HostProcess {
    host_process_with(role, reference, pg, temporal, queue, &[])
}

/// [`host_process`] with more environment variables (settings) of its own.
pub fn host_process_with(
    role: &str,
    reference: bool,
    pg: &Postgres,
    temporal: &str,
    queue: &str,
    env: &[(&str, &str)],
) -> HostProcess {
    let data = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", test_support::free_port());
    let components = std::path::Path::new(test_components::VALIDATE_USER)
        .parent()
        .unwrap()
        .to_path_buf();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_activity-host"))
        .arg(role)
        .env("ACTIVITY_HOST_WORKFLOW__TEMPORAL__ADDRESS", temporal)
        .env("ACTIVITY_HOST_WORKFLOW__TEMPORAL__TASK_QUEUE", queue)
        .env("ACTIVITY_HOST_DATA_DIR", data.path())
        .env(
            "ACTIVITY_HOST_RUNTIME__COMPILED_CACHE_DIR",
            super::shared_compiled_cache(),
        )
        .env("ACTIVITY_HOST_API__LISTEN", &listen)
        .env("ACTIVITY_HOST_REGISTRY__BACKEND", "postgres")
        .env("ACTIVITY_HOST_REGISTRY__POSTGRES_URL", pg.url())
        .env("ACTIVITY_HOST_REGISTRY__POSTGRES_POOL_SIZE", "4")
        .env("ACTIVITY_HOST_REGISTRY__RECONCILE_MS", "600000")
        .env("ACTIVITY_HOST_ACTIVITIES__COMPONENTS_DIR", components)
        // An activity on a killed host is retried after this, not after the default 30 s.
        .env(
            "ACTIVITY_HOST_WORKER__USER_WORKFLOW__START_TO_CLOSE_MS",
            "5000",
        )
        .env(
            "ACTIVITY_HOST_ACTIVITIES__DEPLOY_REFERENCE",
            if reference { "true" } else { "false" },
        )
        .env("RUST_LOG", "error")
        .envs(env.iter().copied())
        .stdout(std::fs::File::create(data.path().join("stdout.log")).unwrap())
        .stderr(std::fs::File::create(data.path().join("stderr.log")).unwrap())
        .spawn()
        .expect("activity-host");
    HostProcess {
        child,
        base: format!("http://{listen}"),
        data,
    }
}

pub async fn wait_healthy(http: &reqwest::Client, base: &str) {
    let up = eventually(Duration::from_secs(60), || async {
        let res = http.get(format!("{base}/readyz")).send().await.ok()?;
        res.status().is_success().then_some(())
    })
    .await;
    assert!(up.is_some(), "{base} never became ready");
}

/// The Temporal a fleet runs on: the dev server, or a cluster as production runs it (built
/// from source, PostgreSQL, several shards, mutual TLS required).
pub enum Temporal {
    Dev(DevServer),
    Cluster(TemporalCluster),
}

impl Temporal {
    /// A cluster on `pg` (its own databases beside the registry's), its `default` namespace
    /// registered.
    pub fn cluster(pg: &Postgres) -> Self {
        let cluster = TemporalCluster::start(pg).unwrap_or_else(|e| panic!("cluster: {e}"));
        cluster
            .create_namespace("default")
            .unwrap_or_else(|e| panic!("namespace: {e}"));
        Self::Cluster(cluster)
    }

    /// How a client reaches it.
    pub fn settings(&self) -> activity_worker::TemporalSettings {
        match self {
            Self::Dev(server) => activity_worker::TemporalSettings {
                address: server.address.clone(),
                ..Default::default()
            },
            Self::Cluster(cluster) => cluster.client_settings(),
        }
    }

    /// A host's environment for it (TLS for the cluster).
    pub fn host_env(&self) -> Vec<(String, String)> {
        match self {
            Self::Dev(_) => Vec::new(),
            Self::Cluster(cluster) => cluster.host_env(),
        }
    }
}

/// An API host and worker hosts on one PostgreSQL registry and one Temporal, and a plain SDK
/// worker running the callers (`CallSeries`, `CallByName`) on a queue of its own.
pub struct Fleet {
    pub client: Client,
    pub http: reqwest::Client,
    /// The API host (role `server`); it deployed the reference activities.
    pub api: HostProcess,
    pub workers: Vec<HostProcess>,
    /// The hosts' task queue.
    pub queue: String,
    pub caller_queue: String,
    _caller: tokio::sync::oneshot::Sender<()>,
    /// Dropped after the hosts: the Temporal they use, then the registry.
    pub temporal: Temporal,
    pub pg: Postgres,
}

impl Fleet {
    /// An API host and `workers` worker hosts on one PostgreSQL registry and a dev server,
    /// with `env` for all.
    pub async fn start(workers: usize, env: &[(&str, &str)]) -> Self {
        let pg = Postgres::start().expect("postgres");
        let server = DevServer::start().expect("dev server");
        Self::start_on(pg, Temporal::Dev(server), workers, env).await
    }

    /// The same on `temporal`, with the registry on `pg`.
    pub async fn start_on(
        pg: Postgres,
        temporal: Temporal,
        workers: usize,
        env: &[(&str, &str)],
    ) -> Self {
        let http = super::http();
        let queue = format!("rollout-{}", test_support::free_port());
        let own = temporal.host_env();
        let env: Vec<(&str, &str)> = own
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(env.iter().copied())
            .collect();
        let address = temporal.settings().address;
        let api = host_process_with("server", true, &pg, &address, &queue, &env);
        wait_healthy(&http, &api.base).await;
        let workers: Vec<HostProcess> = (0..workers)
            .map(|_| host_process_with("worker", false, &pg, &address, &queue, &env))
            .collect();
        for w in &workers {
            wait_healthy(&http, &w.base).await;
        }
        let caller_queue = format!("caller-{}", test_support::free_port());
        let caller =
            test_support::caller::start_caller_worker_on(temporal.settings(), &caller_queue);
        let client = activity_worker::connect_to(&temporal.settings())
            .await
            .expect("client");
        Self {
            client,
            http,
            api,
            workers,
            queue,
            caller_queue,
            _caller: caller,
            temporal,
            pg,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api.base)
    }

    pub async fn deploy(&self, query: &str, bytes: Vec<u8>) -> Value {
        let res = self
            .http
            .put(self.url(&format!("/api/v1/activities/ValidateUser?{query}")))
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, 201, "{body}");
        body
    }

    pub fn series(&self, user: Value, calls: u32, pause: bool) -> SeriesRequest {
        let mut call = CallRequest::new("ValidateUser", vec![user], &self.queue);
        call.maximum_attempts = 20;
        SeriesRequest {
            call,
            calls,
            pause_after_first: pause,
        }
    }

    pub async fn start_series(&self, id: &str, request: SeriesRequest) {
        self.client
            .start_workflow(
                CallSeries::run,
                request,
                WorkflowStartOptions::new(&self.caller_queue, id).build(),
            )
            .await
            .expect("start");
    }

    pub async fn result(&self, id: &str) -> Vec<CallResult> {
        self.client
            .get_workflow_handle::<CallSeries>(id)
            .get_result(WorkflowGetResultOptions::default())
            .await
            .expect("result")
    }

    /// ActivityTaskCompleted events in `id`'s history.
    pub async fn completed_calls(&self, id: &str) -> usize {
        let history = WorkflowService::get_workflow_execution_history(
            &mut self.client.clone(),
            GetWorkflowExecutionHistoryRequest {
                namespace: "default".into(),
                execution: Some(WorkflowExecution {
                    workflow_id: id.into(),
                    run_id: String::new(),
                }),
                ..Default::default()
            }
            .into_request(),
        )
        .await
        .expect("history")
        .into_inner();
        history
            .history
            .map(|h| h.events)
            .unwrap_or_default()
            .iter()
            .filter(|e| e.event_type() == EventType::ActivityTaskCompleted)
            .count()
    }

    /// The candidate of ValidateUser that the host at `base` holds, from its /metrics.
    pub async fn held_candidate(&self, base: &str) -> Option<String> {
        held_in(&super::get_text(&self.http, format!("{base}/metrics")).await)
    }

    pub async fn details(&self, base: &str) -> Value {
        get_json(&self.http, format!("{base}/api/v1/activities/ValidateUser")).await
    }
}

/// The ValidateUser candidate version a host's metrics say it holds.
pub fn held_in(metrics: &str) -> Option<String> {
    metrics
        .lines()
        .filter(|l| l.starts_with(r#"activity_candidate_held{activity_type="ValidateUser""#))
        .filter(|l| l.ends_with(" 1"))
        .find_map(|l| Some(l.split("version=\"").nth(1)?.split('"').next()?.to_string()))
}

pub fn versions(results: &[CallResult]) -> Vec<String> {
    results
        .iter()
        .map(|r| {
            assert!(r.failures.is_empty(), "{r:?}");
            r.version
                .clone()
                .expect("a version in the result's metadata")
        })
        .collect()
}
