//! `--rest`: what a user of `make dev` waits for, through the REST API of one
//! `activity-host dev` process (the worker and the API in one process) on the benchmark's dev
//! server. `POST /api/v1/activities/ValidateUser/invoke` (the answer carries the result), and
//! `UserWorkflow` create: `POST /api/v1/workflows/user`, then the result through the Temporal
//! client's long poll (no polling interval in the figure). Eager workflow start off and on,
//! each in its own process, measured interleaved.

use std::time::{Duration, Instant};

use activity_worker::workflow::UserOutcome;
use activity_worker::UserWorkflow;
use anyhow::{ensure, Context};
use serde_json::{json, Value};
use temporalio_client::{Client, WorkflowGetResultOptions};

use crate::load::Percentiles;
use crate::workers::{Kind, Programs, WorkerProcess};

/// What one `dev` process measured.
pub struct Rest {
    /// `POST .../invoke` of ValidateUser, sequential.
    pub invoke: Percentiles,
    /// `UserWorkflow` create from the REST start to the result, sequential.
    pub create: Percentiles,
}

/// One `activity-host dev` process on its own task queue, ready to serve.
struct DevHost {
    process: WorkerProcess,
    base: String,
    run_id: String,
}

impl DevHost {
    async fn start(
        programs: &Programs,
        temporal: &str,
        webhook: &str,
        http: &reqwest::Client,
        eager: bool,
    ) -> anyhow::Result<Self> {
        let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
        let mut process = WorkerProcess::start_role(
            Kind::Host,
            "dev",
            programs,
            temporal,
            webhook,
            &run_id,
            &[(
                "ACTIVITY_HOST_API__EAGER_WORKFLOW_START".into(),
                eager.to_string(),
            )],
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
        })
    }
}

/// Starts one `dev` process per entry of `eager` (`api.eager_workflow_start`), all at once,
/// and measures them interleaved: call `i` goes to every process in turn, in alternating
/// order, so drift of the shared machine and dev server (its history grows as the run goes)
/// falls on every setting alike. `runs` invokes, then `runs` creates, after `warmup` of each.
pub async fn run(
    programs: &Programs,
    client: &Client,
    temporal: &str,
    runs: usize,
    warmup: usize,
    eager: &[bool],
) -> anyhow::Result<Vec<Rest>> {
    let sink = test_support::HttpSink::start(200).await;
    let http = reqwest::Client::new();
    let mut hosts = Vec::new();
    for &e in eager {
        hosts.push(DevHost::start(programs, temporal, &sink.url("/notify"), &http, e).await?);
    }
    let invokes = interleaved(&hosts, warmup, runs, async |h, id| {
        invoke_validate(&http, &h.base, &id).await
    })
    .await?;
    let creates = interleaved(&hosts, warmup, runs, async |h, id| {
        create_user(&http, &h.base, client, &id).await
    })
    .await?;
    for h in &mut hosts {
        h.process.check_alive()?;
    }
    Ok(invokes
        .into_iter()
        .zip(creates)
        .map(|(i, c)| Rest {
            invoke: Percentiles::of(i),
            create: Percentiles::of(c),
        })
        .collect())
}

/// `warmup + runs` rounds of `call` on every host in [`turn_order`], each call with an id of
/// its own (`rest-RUN-ROUND`); answers per host the times of the measured rounds.
async fn interleaved(
    hosts: &[DevHost],
    warmup: usize,
    runs: usize,
    mut call: impl AsyncFnMut(&DevHost, String) -> anyhow::Result<Duration>,
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
