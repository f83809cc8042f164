//! `bench-e2e --fleet`: hosts sharing one PostgreSQL registry on one task queue. Deploy
//! propagation to N hosts (from the deploy's answer on one host until every host serves the
//! new digest) and `UserWorkflow` throughput with 1, 2 and 3 hosts.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::load::{self, Ids, Percentiles};
use crate::workers::Programs;

/// One host process (`activity-host dev` against a running Temporal: worker and API).
pub(crate) struct FleetHost {
    pub(crate) child: Child,
    pub(crate) base: String,
    _dir: tempfile::TempDir,
}

impl Drop for FleetHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a host with `extra` settings in its environment.
pub(crate) fn start_host(
    programs: &Programs,
    temporal: &str,
    pg_url: &str,
    queue: &str,
    webhook: &str,
    extra: &[(&str, &str)],
) -> anyhow::Result<FleetHost> {
    let dir = tempfile::tempdir()?;
    let listen = format!("127.0.0.1:{}", test_support::free_port());
    let child = Command::new(&programs.host)
        .arg("dev")
        .env("ACTIVITY_HOST_WORKFLOW__TEMPORAL__ADDRESS", temporal)
        .env("ACTIVITY_HOST_WORKFLOW__TEMPORAL__TASK_QUEUE", queue)
        .env("ACTIVITY_HOST_DATA_DIR", dir.path())
        .env("ACTIVITY_HOST_API__LISTEN", &listen)
        .env(
            "ACTIVITY_HOST_ACTIVITIES__COMPONENTS_DIR",
            &programs.components,
        )
        .env("ACTIVITY_HOST_NOTIFICATIONS__WEBHOOK_URL", webhook)
        .env("ACTIVITY_HOST_REGISTRY__BACKEND", "postgres")
        .env("ACTIVITY_HOST_REGISTRY__POSTGRES_URL", pg_url)
        .env("ACTIVITY_HOST_TELEMETRY__LOG_LEVEL", "warn")
        .envs(extra.iter().copied())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting activity-host dev")?;
    Ok(FleetHost {
        child,
        base: format!("http://{listen}"),
        _dir: dir,
    })
}

async fn serving(http: &reqwest::Client, base: &str) -> Option<String> {
    let d: serde_json::Value = http
        .get(format!("{base}/api/v1/activities/ValidateUser"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    d["serving_digest"].as_str().map(String::from)
}

async fn start_fleet(
    n: usize,
    programs: &Programs,
    temporal: &str,
    pg_url: &str,
    queue: &str,
    webhook: &str,
) -> anyhow::Result<Vec<FleetHost>> {
    let http = reqwest::Client::new();
    let mut hosts = Vec::new();
    for _ in 0..n {
        let host = start_host(programs, temporal, pg_url, queue, webhook, &[])?;
        let started = Instant::now();
        while serving(&http, &host.base).await.is_none() {
            if started.elapsed() > Duration::from_secs(60) {
                bail!("a fleet host did not start");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        hosts.push(host);
    }
    Ok(hosts)
}

/// Propagation times of `rounds` deploys through the first host, until every host serves.
async fn propagation(
    hosts: &[FleetHost],
    component: &[u8],
    rounds: usize,
) -> anyhow::Result<Percentiles> {
    let http = reqwest::Client::new();
    let mut samples = Vec::new();
    for round in 0..rounds {
        let tag = format!("fleet-{}-{round}", hosts.len());
        let bytes = test_support::with_custom_section(component, &tag, b"");
        let res = http
            .put(format!("{}/api/v1/activities/ValidateUser", hosts[0].base))
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
            .await?;
        let answered = Instant::now();
        if res.status().as_u16() != 201 {
            bail!("deploy answered {}: {}", res.status(), res.text().await?);
        }
        let body: serde_json::Value = res.json().await?;
        let digest = body["version"]["digest"]
            .as_str()
            .context("no digest")?
            .to_string();
        loop {
            let mut all = true;
            for h in hosts {
                if serving(&http, &h.base).await.as_deref() != Some(digest.as_str()) {
                    all = false;
                    break;
                }
            }
            if all {
                break;
            }
            if answered.elapsed() > Duration::from_secs(30) {
                bail!("a host never served {digest}");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        samples.push(answered.elapsed());
    }
    Ok(Percentiles::of(samples))
}

/// What the fleet run measured.
pub struct FleetResult {
    pub propagation: Vec<(usize, Percentiles)>,
    pub throughput: Vec<(usize, f64)>,
}

/// Runs the fleet measurements.
pub async fn run(
    programs: &Programs,
    temporal: &str,
    webhook: &str,
    duration: Duration,
    concurrency: usize,
) -> anyhow::Result<FleetResult> {
    let pg = test_support::Postgres::start().context("PostgreSQL (make postgres installs it)")?;
    let component = std::fs::read(programs.components.join("validate_user.wasm"))
        .context("validate_user.wasm")?;
    let mut propagation_results = Vec::new();
    for n in [1usize, 3, 5] {
        let queue = format!("fleet-p{n}-{}", test_support::free_port());
        eprintln!("fleet: propagation to {n} hosts");
        let hosts = start_fleet(n, programs, temporal, &pg.url(), &queue, webhook).await?;
        propagation_results.push((n, propagation(&hosts, &component, 10).await?));
    }
    let client = activity_worker::connect(temporal, "default").await?;
    let mut throughput = Vec::new();
    for n in [1usize, 2, 3] {
        let queue = format!("fleet-t{n}-{}", test_support::free_port());
        eprintln!("fleet: throughput with {n} hosts");
        let _hosts = start_fleet(n, programs, temporal, &pg.url(), &queue, webhook).await?;
        let ids = Arc::new(Ids::new(
            format!("fleet{n}-{}", test_support::free_port()),
            activity_worker::ActivityMode::Remote,
        ));
        for _ in 0..10 {
            load::create_user(&client, &queue, &ids).await?;
        }
        let t = load::throughput(&client, &queue, &ids, concurrency, duration).await?;
        throughput.push((n, t.per_second));
    }
    Ok(FleetResult {
        propagation: propagation_results,
        throughput,
    })
}

/// The fleet results in Markdown.
pub fn table(r: &FleetResult, concurrency: usize) -> String {
    let mut out = String::from(
        "| hosts | deploy propagation p50 | max of 10 deploys |\n| --- | --- | --- |\n",
    );
    for (n, p) in &r.propagation {
        out.push_str(&format!("| {n} | {:.0} ms | {:.0} ms |\n", p.p50, p.p99));
    }
    out.push_str(&format!(
        "\n| hosts | workflows/s at concurrency {concurrency} | vs 1 host |\n| --- | --- | --- |\n"
    ));
    let one = r.throughput.first().map_or(1.0, |(_, t)| *t);
    for (n, t) in &r.throughput {
        out.push_str(&format!("| {n} | {t:.1} | {:.2}x |\n", t / one));
    }
    out
}
