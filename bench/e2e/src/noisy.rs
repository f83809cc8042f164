//! `--noisy`: one noisy activity type beside an honest one on the same host. Six `Spinner`
//! standalone activities (a component that loops until its time limit) are kept running
//! while standalone `ValidateUser` activities are measured one after another; the same
//! `ValidateUser` runs alone first, in the same run, for the baseline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use temporalio_client::{ActivityStartOptions, Client};
use temporalio_common::data_converters::RawValue;
use temporalio_common::UntypedActivity;

use crate::load::{self, Ids, Percentiles};
use crate::workers::{Kind, Programs, WorkerProcess};

/// Noisy calls kept in flight.
pub const NOISY: usize = 6;
/// The spinner's time limit: each noisy call burns this much CPU, then fails.
const SPIN_MS: u64 = 2000;

/// What one run measured.
pub struct Noisy {
    /// ValidateUser alone.
    pub alone: Percentiles,
    /// ValidateUser beside the spinners.
    pub beside: Percentiles,
    /// Spinner calls that ran to their limit meanwhile.
    pub spins: u64,
}

/// Runs the scenario on one activity-host worker; `env` adds its settings.
pub async fn run(
    programs: &Programs,
    client: &Client,
    temporal: &str,
    runs: usize,
    env: &[(String, String)],
) -> anyhow::Result<Noisy> {
    let watch = tempfile::tempdir()?;
    std::fs::copy(
        programs.components.join("misbehaving.wasm"),
        watch.path().join("Spinner.wasm"),
    )
    .context("the misbehaving component (make guests builds it)")?;
    std::fs::write(
        watch.path().join("Spinner.json"),
        serde_json::json!({
            "export": "spin",
            "grants": {"allowed_hosts": ["hosts.invalid"]},
            "limits": {"max_execution_ms": SPIN_MS},
        })
        .to_string(),
    )?;
    let mut env = env.to_vec();
    env.push((
        "ACTIVITY_HOST_ACTIVITIES__WATCH_DIR".into(),
        watch.path().display().to_string(),
    ));
    env.push((
        "ACTIVITY_HOST_ACTIVITIES__WATCH_INTERVAL_MS".into(),
        "200".into(),
    ));
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let sink = test_support::HttpSink::start(200).await;
    let mut worker = WorkerProcess::start_with(
        Kind::Host,
        programs,
        temporal,
        &sink.url("/notify"),
        &run_id,
        &env,
    )?;
    let queue = worker.task_queue.clone();
    let ids = Arc::new(Ids::new(
        format!("noisy-{run_id}"),
        Kind::Host.activity_mode(),
    ));
    // Ready when ValidateUser answers; then warm up.
    let mut ready = false;
    for _ in 0..90 {
        if tokio::time::timeout(
            Duration::from_secs(2),
            load::invoke_validate(client, &queue, &ids),
        )
        .await
        .is_ok_and(|r| r.is_ok())
        {
            ready = true;
            break;
        }
        worker.check_alive()?;
    }
    anyhow::ensure!(ready, "the worker never answered");
    for _ in 0..20 {
        load::invoke_validate(client, &queue, &ids).await?;
    }
    let alone = load::sequential(runs, || load::invoke_validate(client, &queue, &ids)).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let mut spinners = Vec::new();
    for n in 0..NOISY {
        let (client, queue, stop) = (client.clone(), queue.clone(), stop.clone());
        let prefix = format!("spin-{run_id}-{n}");
        spinners.push(tokio::spawn(async move {
            let mut done = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let id = format!("{prefix}-{done}");
                let handle = client
                    .start_activity(
                        UntypedActivity::new("Spinner".to_string()),
                        RawValue::new(vec![]),
                        ActivityStartOptions::with_start_to_close_timeout(
                            queue.clone(),
                            id,
                            Duration::from_secs(30),
                        )
                        .retry_policy(
                            temporalio_common::RetryPolicy::builder()
                                .maximum_attempts(1)
                                .build(),
                        )
                        .build(),
                    )
                    .await;
                if let Ok(h) = handle {
                    // It fails at its time limit, by design.
                    let _ = h.result().await;
                }
                done += 1;
            }
            done
        }));
    }
    // Let the spinners reach the host first.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let beside = load::sequential(runs, || load::invoke_validate(client, &queue, &ids)).await?;
    stop.store(true, Ordering::Relaxed);
    let mut spins = 0;
    for s in spinners {
        spins += s.await.unwrap_or(0);
    }
    worker.check_alive()?;
    Ok(Noisy {
        alone,
        beside,
        spins,
    })
}

/// The Markdown table of the scenario with and without the per-type concurrency cap.
pub fn table(rows: &[(&str, &Noisy)]) -> String {
    let mut out = String::from(
        "| setting | ValidateUser alone p50 / p99 | beside 6 spinners p50 / p99 | ratio of p50s (goal <= 2.0) | spinner calls meanwhile |\n| --- | --- | --- | --- | --- |\n",
    );
    for (name, n) in rows {
        out.push_str(&format!(
            "| {name} | {:.1} / {:.1} ms | {:.1} / {:.1} ms | {:.2} | {} |\n",
            n.alone.p50,
            n.alone.p99,
            n.beside.p50,
            n.beside.p99,
            n.beside.p50 / n.alone.p50,
            n.spins
        ));
    }
    out
}
