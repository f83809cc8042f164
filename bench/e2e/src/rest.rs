//! `--rest`: what a user of `make dev` waits for, through the REST API of one
//! `activity-host dev` process (the worker and the API in one process) on the benchmark's dev
//! server. `POST /api/v1/activities/ValidateUser/invoke` (the answer carries the result), and
//! `UserWorkflow` create: `POST /api/v1/workflows/user`, then the result through the Temporal
//! client's long poll (no polling interval in the figure). Eager workflow start off and on,
//! each in its own process, measured interleaved; and (`--cluster`) the same on the dev server
//! and on a Temporal cluster as production runs it, with creates at a concurrency.

use std::time::{Duration, Instant};

use activity_worker::workflow::UserOutcome;
use activity_worker::UserWorkflow;
use anyhow::{ensure, Context};
use serde_json::{json, Value};
use temporalio_client::{Client, WorkflowGetResultOptions};

use crate::load::{Percentiles, Throughput};
use crate::workers::{Kind, Programs, WorkerProcess};

/// What one `dev` process measured.
pub struct Rest {
    /// `POST .../invoke` of ValidateUser, sequential.
    pub invoke: Percentiles,
    /// `UserWorkflow` create from the REST start to the result, sequential.
    pub create: Percentiles,
    /// Creates through REST at a concurrency, when asked for.
    pub throughput: Option<Throughput>,
}

/// Where one `dev` process runs: its Temporal's address, a client of it (for results), and
/// settings of its own (`ACTIVITY_HOST_*`).
pub struct Target<'a> {
    pub temporal: &'a str,
    pub client: &'a Client,
    pub env: Vec<(String, String)>,
}

/// One `activity-host dev` process on its own task queue, ready to serve.
struct DevHost<'a> {
    process: WorkerProcess,
    base: String,
    run_id: String,
    client: &'a Client,
}

impl<'a> DevHost<'a> {
    async fn start(
        programs: &Programs,
        target: &Target<'a>,
        webhook: &str,
        http: &reqwest::Client,
    ) -> anyhow::Result<Self> {
        let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
        let mut process = WorkerProcess::start_role(
            Kind::Host,
            "dev",
            programs,
            target.temporal,
            webhook,
            &run_id,
            &target.env,
        )?;
        let base = format!("http://{}", process.api);
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let ready = http.get(format!("{base}/readyz")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            process.check_alive()?;
            ensure!(Instant::now() < deadline, "the dev host never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self {
            process,
            base,
            run_id,
            client: target.client,
        })
    }
}

/// The setting of `api.eager_workflow_start` as a target's own.
pub fn eager(on: bool) -> Vec<(String, String)> {
    vec![(
        "ACTIVITY_HOST_API__EAGER_WORKFLOW_START".into(),
        on.to_string(),
    )]
}

/// Starts one `dev` process per target, all at once, and measures them interleaved: call `i`
/// goes to every process in turn, in alternating order, so drift of the shared machine and
/// servers (their history grows as the run goes) falls on every setting alike. `runs`
/// invokes, then `runs` creates, after `warmup` of each; then, with `load` (concurrency and
/// duration), creates through REST at that concurrency, one target after the other.
pub async fn run(
    programs: &Programs,
    targets: &[Target<'_>],
    runs: usize,
    warmup: usize,
    load: Option<(usize, Duration)>,
) -> anyhow::Result<Vec<Rest>> {
    let sink = test_support::HttpSink::start(200).await;
    let http = reqwest::Client::new();
    let mut hosts = Vec::new();
    for target in targets {
        hosts.push(DevHost::start(programs, target, &sink.url("/notify"), &http).await?);
    }
    let invokes = interleaved(&hosts, warmup, runs, async |h, id| {
        invoke_validate(&http, &h.base, &id).await
    })
    .await?;
    let creates = interleaved(&hosts, warmup, runs, async |h, id| {
        create_user(&http, &h.base, h.client, &id).await
    })
    .await?;
    let mut loads = Vec::new();
    for h in &mut hosts {
        loads.push(match load {
            Some((concurrency, duration)) => {
                Some(throughput(&http, h, concurrency, duration).await?)
            }
            None => None,
        });
        h.process.check_alive()?;
    }
    Ok(invokes
        .into_iter()
        .zip(creates)
        .zip(loads)
        .map(|((i, c), throughput)| Rest {
            invoke: Percentiles::of(i),
            create: Percentiles::of(c),
            throughput,
        })
        .collect())
}

/// `concurrency` loops of REST creates on `host` for `duration`; counts those that complete.
async fn throughput(
    http: &reqwest::Client,
    host: &DevHost<'_>,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Throughput> {
    let started = Instant::now();
    let deadline = started + duration;
    let loops = (0..concurrency).map(|k| async move {
        let mut samples = Vec::new();
        let mut n = 0;
        while Instant::now() < deadline {
            let id = format!("load-{}-{k}-{n}", host.run_id);
            samples.push(create_user(http, &host.base, host.client, &id).await?);
            n += 1;
        }
        anyhow::Ok(samples)
    });
    let mut samples = Vec::new();
    for done in futures::future::join_all(loops).await {
        samples.extend(done?);
    }
    ensure!(!samples.is_empty(), "no workflow completed");
    Ok(Throughput {
        per_second: samples.len() as f64 / started.elapsed().as_secs_f64(),
        latency: Percentiles::of(samples),
    })
}

/// `warmup + runs` rounds of `call` on every host in [`turn_order`], each call with an id of
/// its own (`rest-RUN-ROUND`); answers per host the times of the measured rounds.
async fn interleaved<'a>(
    hosts: &[DevHost<'a>],
    warmup: usize,
    runs: usize,
    mut call: impl AsyncFnMut(&DevHost<'a>, String) -> anyhow::Result<Duration>,
) -> anyhow::Result<Vec<Vec<Duration>>> {
    let mut times = vec![Vec::with_capacity(runs); hosts.len()];
    for i in 0..warmup + runs {
        for k in turn_order(i, hosts.len()) {
            let h = &hosts[k];
            let took = call(h, format!("rest-{}-{i}", h.run_id)).await?;
            if i >= warmup {
                times[k].push(took);
            }
        }
    }
    Ok(times)
}

/// The order of the `n` settings in round `i`: forwards on even rounds, backwards on odd ones.
fn turn_order(i: usize, n: usize) -> Vec<usize> {
    let order = 0..n;
    if i.is_multiple_of(2) {
        order.collect()
    } else {
        order.rev().collect()
    }
}

async fn invoke_validate(http: &reqwest::Client, base: &str, id: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let answer: Value = http
        .post(format!("{base}/api/v1/activities/ValidateUser/invoke"))
        .json(&json!([{"user_id": id, "email": "test@example.com", "name": "Test User"}]))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let elapsed = started.elapsed();
    ensure!(
        answer["status"] == "COMPLETED" && answer["result"]["valid"] == true,
        "unexpected invoke answer {answer}"
    );
    Ok(elapsed)
}

async fn create_user(
    http: &reqwest::Client,
    base: &str,
    client: &Client,
    user: &str,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let answer: Value = http
        .post(format!("{base}/api/v1/workflows/user"))
        .json(&json!({"user_id": user, "email": format!("{user}@example.com"), "name": "Bench User", "action": "create"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let workflow_id = answer["workflow_id"]
        .as_str()
        .with_context(|| format!("no workflow id in {answer}"))?;
    let outcome: UserOutcome = client
        .get_workflow_handle::<UserWorkflow>(workflow_id)
        .get_result(WorkflowGetResultOptions::default())
        .await
        .with_context(|| format!("workflow {workflow_id}"))?;
    let elapsed = started.elapsed();
    let stored = outcome.user.context("no user in the result")?;
    ensure!(stored["user_id"] == user, "wrong user in {stored}");
    Ok(elapsed)
}

/// The Markdown table of the same workload on several Temporals: one row each.
pub fn table_with_load(rows: &[(&str, &Rest)], concurrency: usize) -> String {
    let mut out = format!(
        "| Temporal | REST create p50 | p99 | REST invoke p50 | creates/s at {concurrency} | their p50 | p99 |\n| --- | --- | --- | --- | --- | --- | --- |\n"
    );
    for (name, r) in rows {
        let (rate, p50, p99) = r.throughput.as_ref().map_or((0.0, 0.0, 0.0), |t| {
            (t.per_second, t.latency.p50, t.latency.p99)
        });
        out.push_str(&format!(
            "| {name} | {:.1} ms | {:.1} ms | {:.1} ms | {rate:.1} | {p50:.1} ms | {p99:.1} ms |\n",
            r.create.p50, r.create.p99, r.invoke.p50
        ));
    }
    out
}

/// The Markdown table: one row per setting.
pub fn table(rows: &[(&str, &Rest)]) -> String {
    let mut out = String::from(
        "| `activity-host dev` | REST invoke p50 | p99 | REST create to result p50 | p95 | p99 |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    let first = rows.first().map(|(_, r)| r.create.p50).unwrap_or(1.0);
    for (name, r) in rows {
        out.push_str(&format!(
            "| {name} | {:.1} ms | {:.1} ms | {:.1} ms ({:.2}x) | {:.1} ms | {:.1} ms |\n",
            r.invoke.p50,
            r.invoke.p99,
            r.create.p50,
            r.create.p50 / first,
            r.create.p95,
            r.create.p99
        ));
    }
    out
}
