//! The load: `UserWorkflow` create runs and standalone `ValidateUser` activities, started
//! through the Temporal client as users start them, with every result checked.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use activity_worker::workflow::{Action, ActivityMode, UserOutcome, UserRequest};
use activity_worker::UserWorkflow;
use anyhow::{bail, ensure, Context};
use temporalio_client::{
    ActivityStartOptions, Client, WorkflowGetResultOptions, WorkflowStartOptions,
};
use temporalio_common::data_converters::RawValue;
use temporalio_common::UntypedActivity;

/// Latency percentiles of a series, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

impl Percentiles {
    /// Percentiles of `samples`, from an HDR histogram in microseconds (3 significant
    /// digits). The auto-resizing histogram (`Histogram::new`) does not resize on a saturating
    /// record: fixed bounds it is.
    pub fn of(samples: Vec<Duration>) -> Self {
        // 1 µs to 1 hour; longer samples count as 1 hour.
        let mut histogram = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)
            .expect("valid bounds");
        for s in &samples {
            histogram.saturating_record(s.as_micros().max(1) as u64);
        }
        let at = |q: f64| {
            if histogram.is_empty() {
                return 0.0;
            }
            histogram.value_at_quantile(q) as f64 / 1000.0
        };
        Self {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
        }
    }
}

/// Unique ids across one benchmark run, and where the workflows started with them run
/// their activities.
pub struct Ids {
    prefix: String,
    next: AtomicU64,
    mode: ActivityMode,
}

impl Ids {
    /// Ids starting with `prefix`, for workflows whose activities run as `mode` says.
    pub fn new(prefix: String, mode: ActivityMode) -> Self {
        Self {
            prefix,
            next: AtomicU64::new(0),
            mode,
        }
    }

    fn next(&self) -> String {
        format!(
            "{}-{}",
            self.prefix,
            self.next.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// Runs one `UserWorkflow` create to its result, checks the result, answers how long it took.
pub async fn create_user(client: &Client, queue: &str, ids: &Ids) -> anyhow::Result<Duration> {
    create_user_as(client, queue, &ids.next(), ids.mode).await
}

/// Runs `UserWorkflow` create for user `id` (workflow id `wf-<id>`).
async fn create_user_as(
    client: &Client,
    queue: &str,
    id: &str,
    activity_mode: ActivityMode,
) -> anyhow::Result<Duration> {
    let id = id.to_string();
    let request = UserRequest {
        user_id: id.clone(),
        email: format!("{id}@example.com"),
        name: "Bench User".into(),
        action: Action::Create,
        activity_mode,
    };
    let started = Instant::now();
    let handle = client
        .start_workflow(
            UserWorkflow::run,
            request,
            WorkflowStartOptions::new(queue.to_string(), format!("wf-{id}")).build(),
        )
        .await
        .with_context(|| format!("starting workflow wf-{id}"))?;
    let outcome: UserOutcome = handle
        .get_result(WorkflowGetResultOptions::default())
        .await
        .with_context(|| format!("workflow wf-{id}"))?;
    let elapsed = started.elapsed();
    let user = outcome.user.context("no user in the result")?;
    ensure!(user["user_id"] == id.as_str(), "wrong user in {user}");
    ensure!(user["version"] == 1, "not a new user: {user}");
    let status = outcome.notification.as_ref().map(|n| n["status"].clone());
    ensure!(
        status == Some(serde_json::json!(200)),
        "notification not delivered: {:?}",
        outcome.notification
    );
    Ok(elapsed)
}

/// Runs one standalone `ValidateUser` activity to its result, checks it, answers how long
/// it took.
pub async fn invoke_validate(client: &Client, queue: &str, ids: &Ids) -> anyhow::Result<Duration> {
    let id = ids.next();
    let user = serde_json::json!({"user_id": id, "email": "test@example.com", "name": "Test User"});
    let started = Instant::now();
    let handle = client
        .start_activity(
            UntypedActivity::new("ValidateUser".to_string()),
            RawValue::new(vec![activity_worker::payload::from_json(&user)]),
            ActivityStartOptions::with_start_to_close_timeout(
                queue.to_string(),
                format!("act-{id}"),
                Duration::from_secs(10),
            )
            .build(),
        )
        .await
        .with_context(|| format!("starting activity act-{id}"))?;
    let raw = handle
        .result()
        .await
        .with_context(|| format!("activity act-{id}"))?;
    let elapsed = started.elapsed();
    let answer = raw
        .payloads
        .first()
        .map(|p| activity_worker::payload::to_json(0, p))
        .transpose()?
        .context("no result")?;
    ensure!(answer["valid"] == true, "unexpected validation {answer}");
    Ok(elapsed)
}

/// `count` sequential creates; answers their percentiles and workflow ids.
pub async fn create_sequential(
    client: &Client,
    queue: &str,
    ids: &Ids,
    count: usize,
) -> anyhow::Result<(Percentiles, Vec<String>)> {
    let mut samples = Vec::with_capacity(count);
    let mut workflow_ids = Vec::with_capacity(count);
    for _ in 0..count {
        let id = ids.next();
        samples.push(create_user_as(client, queue, &id, ids.mode).await?);
        workflow_ids.push(format!("wf-{id}"));
    }
    Ok((Percentiles::of(samples), workflow_ids))
}

/// Milliseconds of one workflow spent in the worker, from its history: workflow tasks from
/// started to completed plus activity tasks from started to completed. The rest of its
/// time is the server's (dispatch, persistence) and the client's.
pub fn worker_ms(server: &test_support::DevServer, workflow_id: &str) -> anyhow::Result<f64> {
    let out = server.cli(&["workflow", "show", "-w", workflow_id, "-o", "json"])?;
    ensure!(
        out.status.success(),
        "temporal workflow show {workflow_id} failed"
    );
    let history: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let events = history["events"].as_array().context("no events")?;
    let mut started = None;
    let mut total = 0.0;
    for e in events {
        let at = seconds_of_day(e["eventTime"].as_str().context("no eventTime")?)?;
        match e["eventType"].as_str().unwrap_or_default() {
            "EVENT_TYPE_WORKFLOW_TASK_STARTED" | "EVENT_TYPE_ACTIVITY_TASK_STARTED" => {
                started = Some(at)
            }
            "EVENT_TYPE_WORKFLOW_TASK_COMPLETED" | "EVENT_TYPE_ACTIVITY_TASK_COMPLETED" => {
                if let Some(s) = started.take() {
                    let d: f64 = at - s;
                    total += if d < 0.0 { d + 86_400.0 } else { d };
                }
            }
            _ => {}
        }
    }
    Ok(total * 1000.0)
}

/// Seconds since midnight of an RFC 3339 UTC time (`...T12:34:56.789Z`).
fn seconds_of_day(t: &str) -> anyhow::Result<f64> {
    let time = t
        .split_once('T')
        .map(|(_, r)| r.trim_end_matches('Z'))
        .context("not a time")?;
    let mut parts = time.split(':');
    let mut next = || -> anyhow::Result<f64> { Ok(parts.next().context("short time")?.parse()?) };
    Ok(next()? * 3600.0 + next()? * 60.0 + next()?)
}

/// `count` runs of `one`, one after another.
pub async fn sequential<F, Fut>(count: usize, mut one: F) -> anyhow::Result<Percentiles>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Duration>>,
{
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        samples.push(one().await?);
    }
    Ok(Percentiles::of(samples))
}

/// What a fixed-time run at some concurrency achieved.
#[derive(Debug, Clone, Copy, Default)]
pub struct Throughput {
    /// Workflows completed per second.
    pub per_second: f64,
    /// Their latencies.
    pub latency: Percentiles,
}

/// `concurrency` loops of `create_user` for `duration`; counts the workflows that complete.
pub async fn throughput(
    client: &Client,
    queue: &str,
    ids: &Arc<Ids>,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Throughput> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, queue, ids) = (client.clone(), queue.to_string(), ids.clone());
        tasks.spawn(async move {
            let mut samples = Vec::new();
            while Instant::now() < deadline {
                samples.push(create_user(&client, &queue, &ids).await?);
            }
            anyhow::Ok(samples)
        });
    }
    let mut samples = Vec::new();
    while let Some(done) = tasks.join_next().await {
        samples.extend(done??);
    }
    // Runs started before the deadline finish after it: count them over the whole time.
    let elapsed = started.elapsed().as_secs_f64();
    if samples.is_empty() {
        bail!("no workflow completed at concurrency {concurrency}");
    }
    Ok(Throughput {
        per_second: samples.len() as f64 / elapsed,
        latency: Percentiles::of(samples),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_samples() {
        let samples = (1..=100).map(Duration::from_millis).collect();
        let p = Percentiles::of(samples);
        assert!((p.p50 - 50.0).abs() < 0.1, "{p:?}");
        assert!((p.p95 - 95.0).abs() < 0.1, "{p:?}");
        assert!((p.p99 - 99.0).abs() < 0.1, "{p:?}");
        assert_eq!(Percentiles::of(Vec::new()).p50, 0.0);
    }
}
