//! `bench-e2e --roll`: a rolling restart under load, as a Deployment's rolling update does it.
//! Three `activity-host dev` processes (worker and API) on one task queue share a PostgreSQL
//! registry. UserWorkflow creates arrive through REST at a steady rate (`--rate`, 20 per
//! second), each sent to a host whose `/readyz` answers 200, as a load balancer sends them,
//! with an `Idempotency-Key`, retried on another host when a connection fails or a host
//! answers 503. After a warm-up, each host in turn gets SIGTERM, drains (`/readyz` 503 for
//! `api.shutdown_delay_ms` while it still serves, then its worker finishes what it runs) and
//! exits, and a replacement starts and becomes ready before the next host goes.
//!
//! Measured from Temporal's histories: workflows started and how each closed, activity
//! timeouts and failed attempts, and start-to-close latency of the workflows started before,
//! during and after the roll.
//!
//! Then kill-to-retry: a long activity that heartbeats (the misbehaving component's `resume`,
//! called with the host's own heartbeat timeout, `worker.user_workflow.heartbeat_timeout_ms`,
//! 8 s) runs on one host; that host is killed with SIGKILL, and the time until Temporal starts
//! the next attempt (on another host) is read from the caller workflow's pending activity.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use temporalio_client::grpc::WorkflowService;
use temporalio_client::tonic::IntoRequest;
use temporalio_client::Client;
use temporalio_common::protos::temporal::api::common::v1::WorkflowExecution;
use temporalio_common::protos::temporal::api::enums::v1::EventType;
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    DescribeWorkflowExecutionRequest, GetWorkflowExecutionHistoryRequest,
};

use crate::fleet::{start_host, FleetHost};
use crate::load::Percentiles;
use crate::workers::Programs;

/// How long a host stopping on SIGTERM answers `/readyz` 503 while still serving.
const DRAIN_DELAY_MS: &str = "2000";
/// The heartbeat timeout the kill-to-retry call carries: the host's default for the
/// activities it schedules.
const HEARTBEAT_TIMEOUT_MS: u64 = 8_000;
/// Load before the first host goes, and after the last one is back.
const STEADY: Duration = Duration::from_secs(10);

/// When a workflow's start was sent, relative to the roll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Before,
    During,
    After,
}

/// One workflow the load started.
struct Started {
    workflow_id: String,
    run_id: String,
    phase: Phase,
}

/// What the roll measured.
pub struct RollResult {
    pub hosts: usize,
    pub rate: f64,
    pub started: usize,
    /// Starts no host accepted (after the retries).
    pub refused: usize,
    pub completed: usize,
    /// Closed any other way than completed (or still running at the end).
    pub failed: usize,
    pub activity_timeouts: usize,
    pub failed_attempts: usize,
    pub roll_seconds: f64,
    /// Longest time one host took from SIGTERM to exit.
    pub longest_drain_seconds: f64,
    pub before: Percentiles,
    pub during: Percentiles,
    pub after: Percentiles,
    /// From SIGKILL of the host running a heartbeating activity to the start of its next
    /// attempt.
    pub kill_to_retry_seconds: f64,
}

/// The hosts a load balancer sends to: each with its address and whether `/readyz` said
/// ready at the last look.
#[derive(Default)]
struct Balancer {
    backends: RwLock<Vec<(String, bool)>>,
    next: AtomicUsize,
}

impl Balancer {
    fn pick(&self, avoid: Option<&str>) -> Option<String> {
        let backends = self.backends.read().ok()?;
        let ready: Vec<&String> = backends
            .iter()
            .filter(|(base, ready)| *ready && Some(base.as_str()) != avoid)
            .map(|(base, _)| base)
            .collect();
        if ready.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % ready.len();
        Some(ready[i].clone())
    }

    fn set(&self, base: &str, ready: bool) {
        if let Ok(mut b) = self.backends.write() {
            if let Some(entry) = b.iter_mut().find(|(b, _)| b == base) {
                entry.1 = ready;
            }
        }
    }

    fn replace(&self, old: &str, new: &str) {
        if let Ok(mut b) = self.backends.write() {
            if let Some(entry) = b.iter_mut().find(|(b, _)| b == old) {
                *entry = (new.to_string(), false);
            }
        }
    }

    fn bases(&self) -> Vec<String> {
        self.backends
            .read()
            .map(|b| b.iter().map(|(base, _)| base.clone()).collect())
            .unwrap_or_default()
    }
}

async fn is_ready(http: &reqwest::Client, base: &str) -> bool {
    let answer = http
        .get(format!("{base}/readyz"))
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    answer.is_ok_and(|r| r.status().as_u16() == 200)
}

/// Starts one workflow through whichever host is ready; answers its ids, or `None` when no
/// host accepted it within 15 s.
async fn start_one(http: &reqwest::Client, lb: &Balancer, id: &str) -> Option<(String, String)> {
    let body = serde_json::json!({
        "user_id": id, "email": format!("{id}@example.com"), "name": "Roll User", "action": "create",
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut avoid = None;
    while Instant::now() < deadline {
        let Some(base) = lb.pick(avoid.as_deref()).or_else(|| lb.pick(None)) else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let answer = http
            .post(format!("{base}/api/v1/workflows/user"))
            .header("idempotency-key", id)
            .json(&body)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match answer {
            Ok(r) if r.status().is_success() => {
                let v: serde_json::Value = r.json().await.ok()?;
                return Some((
                    v["workflow_id"].as_str()?.to_string(),
                    v["run_id"].as_str()?.to_string(),
                ));
            }
            Ok(r) if r.status().as_u16() != 503 => {
                eprintln!("roll: start of {id} answered {}", r.status());
                return None;
            }
            // A host going away: another one, as a balancer would retry.
            _ => {
                lb.set(&base, false);
                avoid = Some(base);
            }
        }
    }
    None
}

/// How one workflow went, from its history.
struct Closed {
    completed: bool,
    latency: Duration,
    activity_timeouts: usize,
    failed_attempts: usize,
}

async fn closed(client: &Client, namespace: &str, w: &Started) -> anyhow::Result<Option<Closed>> {
    let request = GetWorkflowExecutionHistoryRequest {
        namespace: namespace.to_string(),
        execution: Some(WorkflowExecution {
            workflow_id: w.workflow_id.clone(),
            run_id: w.run_id.clone(),
        }),
        maximum_page_size: 1000,
        ..Default::default()
    };
    let history = WorkflowService::get_workflow_execution_history(
        &mut client.clone(),
        request.into_request(),
    )
    .await
    .with_context(|| format!("history of {}", w.workflow_id))?
    .into_inner()
    .history
    .unwrap_or_default();
    let time = |e: &temporalio_common::protos::temporal::api::history::v1::HistoryEvent| {
        e.event_time
            .as_ref()
            .map(|t| Duration::new(t.seconds.max(0) as u64, t.nanos.max(0) as u32))
            .unwrap_or_default()
    };
    let (mut start, mut close, mut completed) = (None, None, false);
    let (mut activity_timeouts, mut failed_attempts) = (0, 0);
    for e in &history.events {
        match EventType::try_from(e.event_type).unwrap_or(EventType::Unspecified) {
            EventType::WorkflowExecutionStarted => start = Some(time(e)),
            EventType::WorkflowExecutionCompleted => {
                completed = true;
                close = Some(time(e));
            }
            EventType::WorkflowExecutionFailed
            | EventType::WorkflowExecutionTimedOut
            | EventType::WorkflowExecutionCanceled
            | EventType::WorkflowExecutionTerminated => close = Some(time(e)),
            EventType::ActivityTaskTimedOut => activity_timeouts += 1,
            EventType::ActivityTaskFailed => failed_attempts += 1,
            _ => {}
        }
    }
    Ok(match (start, close) {
        (Some(s), Some(c)) => Some(Closed {
            completed,
            latency: c.saturating_sub(s),
            activity_timeouts,
            failed_attempts,
        }),
        _ => None,
    })
}

/// Runs the roll with `n` hosts at `rate` workflows per second.
pub async fn run(
    programs: &Programs,
    temporal: &str,
    webhook: &str,
    n: usize,
    rate: f64,
) -> anyhow::Result<RollResult> {
    let pg = test_support::Postgres::start().context("PostgreSQL (make postgres installs it)")?;
    let queue = format!("roll-{}", test_support::free_port());
    let extra = [("ACTIVITY_HOST_API__SHUTDOWN_DELAY_MS", DRAIN_DELAY_MS)];
    let http = reqwest::Client::new();
    let mut hosts: Vec<FleetHost> = Vec::new();
    for _ in 0..n {
        let host = start_host(programs, temporal, &pg.url(), &queue, webhook, &extra)?;
        wait_ready(&http, &host.base).await?;
        hosts.push(host);
    }
    let lb = Arc::new(Balancer::default());
    if let Ok(mut b) = lb.backends.write() {
        *b = hosts.iter().map(|h| (h.base.clone(), true)).collect();
    }
    let stop = Arc::new(AtomicBool::new(false));
    // The balancer's health checks.
    let checks = tokio::spawn({
        let (lb, stop, http) = (lb.clone(), stop.clone(), http.clone());
        async move {
            while !stop.load(Ordering::Relaxed) {
                for base in lb.bases() {
                    let ready = is_ready(&http, &base).await;
                    lb.set(&base, ready);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    // The load: one start every 1/rate s, each on its own task.
    let phase = Arc::new(Mutex::new(Phase::Before));
    let started: Arc<Mutex<Vec<Started>>> = Arc::default();
    let refused = Arc::new(AtomicUsize::new(0));
    let prefix = format!("roll{}", test_support::free_port());
    let load = tokio::spawn({
        let (lb, stop, http) = (lb.clone(), stop.clone(), http.clone());
        let (phase, started, refused) = (phase.clone(), started.clone(), refused.clone());
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            let mut sends = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let id = format!("{prefix}-{i}");
                i += 1;
                let at = *phase.lock().unwrap_or_else(|p| p.into_inner());
                let (lb, http) = (lb.clone(), http.clone());
                let (started, refused) = (started.clone(), refused.clone());
                sends.push(tokio::spawn(async move {
                    match start_one(&http, &lb, &id).await {
                        Some((workflow_id, run_id)) => {
                            if let Ok(mut s) = started.lock() {
                                s.push(Started {
                                    workflow_id,
                                    run_id,
                                    phase: at,
                                });
                            }
                        }
                        None => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }));
            }
            for s in sends {
                let _ = s.await;
            }
        }
    });

    tokio::time::sleep(STEADY).await;
    *phase.lock().unwrap_or_else(|p| p.into_inner()) = Phase::During;
    let roll_started = Instant::now();
    let mut longest_drain = Duration::ZERO;
    for host in hosts.iter_mut() {
        let old = host.base.clone();
        let pid = host.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()?;
        anyhow::ensure!(sent.success(), "kill -TERM {pid}");
        let asked = Instant::now();
        loop {
            if host.child.try_wait()?.is_some() {
                break;
            }
            if asked.elapsed() > Duration::from_secs(120) {
                bail!("host {old} did not exit within 120 s of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        longest_drain = longest_drain.max(asked.elapsed());
        let replacement = start_host(programs, temporal, &pg.url(), &queue, webhook, &extra)?;
        lb.replace(&old, &replacement.base);
        wait_ready(&http, &replacement.base).await?;
        *host = replacement;
    }
    let roll = roll_started.elapsed();
    *phase.lock().unwrap_or_else(|p| p.into_inner()) = Phase::After;
    tokio::time::sleep(STEADY).await;
    stop.store(true, Ordering::Relaxed);
    load.await?;
    checks.await?;

    let client = activity_worker::connect(temporal, "default").await?;
    let started = std::mem::take(&mut *started.lock().unwrap_or_else(|p| p.into_inner()));
    let mut result = RollResult {
        hosts: n,
        rate,
        started: started.len(),
        refused: refused.load(Ordering::Relaxed),
        completed: 0,
        failed: 0,
        activity_timeouts: 0,
        failed_attempts: 0,
        roll_seconds: roll.as_secs_f64(),
        longest_drain_seconds: longest_drain.as_secs_f64(),
        before: Percentiles::default(),
        during: Percentiles::default(),
        after: Percentiles::default(),
        kill_to_retry_seconds: 0.0,
    };
    let mut latencies = [Vec::new(), Vec::new(), Vec::new()];
    let deadline = Instant::now() + Duration::from_secs(120);
    for w in &started {
        let outcome = loop {
            match closed(&client, "default", w).await? {
                Some(c) => break Some(c),
                None if Instant::now() > deadline => break None,
                None => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        let Some(c) = outcome else {
            eprintln!("roll: {} still running at the end", w.workflow_id);
            result.failed += 1;
            continue;
        };
        if c.completed {
            result.completed += 1;
        } else {
            eprintln!("roll: {} did not complete", w.workflow_id);
            result.failed += 1;
        }
        result.activity_timeouts += c.activity_timeouts;
        result.failed_attempts += c.failed_attempts;
        latencies[w.phase as usize].push(c.latency);
    }
    let [before, during, after] = latencies;
    result.before = Percentiles::of(before);
    result.during = Percentiles::of(during);
    result.after = Percentiles::of(after);
    result.kill_to_retry_seconds = kill_to_retry(programs, temporal, &client, &queue, &mut hosts)
        .await?
        .as_secs_f64();
    Ok(result)
}

/// `activity_task_slots_in_use` of the host at `base`.
async fn slots_in_use(http: &reqwest::Client, base: &str) -> f64 {
    let text = match http.get(format!("{base}/metrics")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => return 0.0,
    };
    text.lines()
        .find(|l| l.starts_with("activity_task_slots_in_use "))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Kills (SIGKILL) the host running a heartbeating activity; answers the time until the
/// activity's next attempt started.
async fn kill_to_retry(
    programs: &Programs,
    temporal: &str,
    client: &Client,
    queue: &str,
    hosts: &mut Vec<FleetHost>,
) -> anyhow::Result<Duration> {
    use test_support::caller::{self, CallRequest};
    let http = reqwest::Client::new();
    let component =
        std::fs::read(programs.components.join("misbehaving.wasm")).context("misbehaving.wasm")?;
    let deployed = http
        .put(format!(
            "{}/api/v1/activities/Resume?export=resume&allow_host=hosts.invalid",
            hosts[0].base
        ))
        .header("content-type", "application/wasm")
        .body(component)
        .send()
        .await?;
    anyhow::ensure!(
        deployed.status().is_success(),
        "deploy of Resume: {}",
        deployed.text().await?
    );
    let caller_queue = format!("roll-caller-{}", test_support::free_port());
    let _caller = caller::start_caller_worker(temporal, &caller_queue);
    // 80 steps of 250 ms, a heartbeat after each.
    let mut request = CallRequest::new(
        "Resume",
        vec![serde_json::json!(80), serde_json::json!(250)],
        queue,
    );
    request.heartbeat_timeout_ms = Some(HEARTBEAT_TIMEOUT_MS);
    request.start_to_close_ms = 120_000;
    let workflow_id = format!("roll-kill-{}", test_support::free_port());
    let call = tokio::spawn({
        let (client, caller_queue, id) =
            (client.clone(), caller_queue.clone(), workflow_id.clone());
        async move { caller::call(&client, &caller_queue, &id, request).await }
    });
    let started = Instant::now();
    let running = loop {
        let mut found = None;
        for (i, h) in hosts.iter().enumerate() {
            if slots_in_use(&http, &h.base).await >= 1.0 {
                found = Some(i);
            }
        }
        if let Some(i) = found {
            break i;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "no host runs Resume"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut victim = hosts.remove(running);
    victim.child.kill()?;
    let killed = std::time::SystemTime::now();
    victim.child.wait()?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let retried = loop {
        let request = DescribeWorkflowExecutionRequest {
            namespace: "default".into(),
            execution: Some(WorkflowExecution {
                workflow_id: workflow_id.clone(),
                run_id: String::new(),
            }),
        };
        let described = WorkflowService::describe_workflow_execution(
            &mut client.clone(),
            request.into_request(),
        )
        .await
        .context("describe the caller")?
        .into_inner();
        let next = described.pending_activities.first().and_then(|a| {
            let t = a.last_started_time.as_ref()?;
            (a.attempt >= 2).then(|| {
                std::time::UNIX_EPOCH
                    + Duration::new(t.seconds.max(0) as u64, t.nanos.max(0) as u32)
            })
        });
        if let Some(at) = next {
            break at;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the activity was not retried within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let result = call.await?;
    anyhow::ensure!(
        result.failures.is_empty(),
        "the killed call failed: {:?}",
        result.failures
    );
    Ok(retried.duration_since(killed).unwrap_or_default())
}

async fn wait_ready(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    while !is_ready(http, base).await {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("host {base} not ready within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The roll's results in Markdown.
pub fn table(r: &RollResult) -> String {
    let mut out = format!(
        "{} hosts, {} UserWorkflow creates per second through REST; each host in turn: SIGTERM, drained and exited (longest {:.1} s), a replacement ready; the roll took {:.1} s.\n\n",
        r.hosts, r.rate, r.longest_drain_seconds, r.roll_seconds
    );
    out.push_str("| started | refused | completed | failed | activity timeouts | failed activity attempts |\n| ---: | ---: | ---: | ---: | ---: | ---: |\n");
    out.push_str(&format!(
        "| {} | {} | {} | {} | {} | {} |\n\n",
        r.started, r.refused, r.completed, r.failed, r.activity_timeouts, r.failed_attempts
    ));
    out.push_str("| started | start-to-close p50 | p95 | p99 |\n| --- | ---: | ---: | ---: |\n");
    for (name, p) in [
        ("before the roll", r.before),
        ("during the roll", r.during),
        ("after the roll", r.after),
    ] {
        out.push_str(&format!(
            "| {name} | {:.0} ms | {:.0} ms | {:.0} ms |\n",
            p.p50, p.p95, p.p99
        ));
    }
    out.push_str(&format!(
        "\nKill-to-retry: the host running a heartbeating activity (heartbeat timeout {} s) killed with SIGKILL; its next attempt started on another host {:.1} s later, and the call completed.\n",
        HEARTBEAT_TIMEOUT_MS / 1000,
        r.kill_to_retry_seconds
    ));
    out
}
