//! `activity-host`: the serverless WebAssembly activity host for Temporal.

use std::path::PathBuf;

use activity_host::config::Config;
use activity_host::dev_server;
use activity_host::host::{shutdown_signal, Host};
use activity_runtime::ActivitySpec;
use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::sync::watch;

/// Serverless WebAssembly activity host for Temporal.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Configuration file (YAML); ACTIVITY_HOST_* environment variables override its keys.
    /// Default: configs/config.yaml when it exists, else built-in defaults.
    #[arg(long, global = true, env = "ACTIVITY_HOST_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Everything on one machine: starts the Temporal dev server (UI on dev.ui_port) when
    /// none answers, loads the reference activities, runs the worker and the REST API.
    Dev,
    /// The Temporal worker only: native workflows and WASM activities. Run many.
    Worker,
    /// The REST API only.
    Server,
    /// Tell whether a component fits the host as an activity type, and why not.
    Check {
        /// The component file.
        file: PathBuf,
        /// The activity type name it would be deployed as.
        #[arg(long)]
        name: String,
        /// Host the activity may call over outgoing HTTP (repeatable).
        #[arg(long = "allow-host")]
        allow_hosts: Vec<String>,
        /// Key-value store the activity may open (repeatable).
        #[arg(long = "kv-store")]
        kv_stores: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    // Library errors are values here (guest failures, refused deploys): capturing a
    // backtrace for each costs more than a whole activity call. Panics keep theirs.
    // Set before any thread starts.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let config_path = cli.config.clone().or_else(|| {
        let default = PathBuf::from("configs/config.yaml");
        default.exists().then_some(default)
    });
    let config = Config::load(config_path.as_deref())?;
    match cli.command {
        Command::Dev => dev(config).await,
        Command::Worker => worker(config).await,
        Command::Server => server(config).await,
        Command::Check {
            file,
            name,
            allow_hosts,
            kv_stores,
        } => {
            let mut spec = ActivitySpec::new(name);
            spec.grants.allowed_hosts = allow_hosts;
            spec.grants.key_value_stores = kv_stores;
            check(config, &file, spec).await
        }
    }
}

/// A shutdown flag set on Ctrl-C or SIGTERM.
fn shutdown_flag() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing requests and running activities");
        let _ = tx.send(true);
    });
    rx
}

async fn dev(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir.0)?;
    let temporal = tokio::task::spawn_blocking({
        let config = config.clone();
        move || dev_server::ensure(&config)
    })
    .await??;
    let host = Host::open(config)?;
    host.start_registry().await?;
    host.deploy_reference_activities().await?;
    let shutdown = shutdown_flag();
    let api = {
        let host = host.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move { host.serve_api(shutdown).await })
    };
    let c = &host.config;
    println!();
    println!("  activity-host is running");
    println!("  REST API      http://{}", c.api.listen);
    println!(
        "  Temporal      {} (namespace {}, task queue {})",
        c.workflow.temporal.address, c.workflow.temporal.namespace, c.workflow.temporal.task_queue
    );
    if temporal.is_some() {
        println!("  Temporal UI   {}", dev_server::ui_url(c));
    }
    println!("  try:  curl -X POST http://{}/api/v1/workflows/user -H 'Content-Type: application/json' \\", c.api.listen);
    println!("          -d '{{\"user_id\":\"user-123\",\"email\":\"test@example.com\",\"name\":\"Test User\",\"action\":\"create\"}}'");
    println!("  Ctrl-C stops everything.");
    println!();
    let worker = host.run_worker(shutdown).await;
    let api = api.await.context("REST API task")?;
    drop(temporal);
    worker?;
    api?;
    Ok(())
}

async fn worker(config: Config) -> anyhow::Result<()> {
    let host = Host::open(config)?;
    host.start_registry().await?;
    host.run_worker(shutdown_flag()).await?;
    Ok(())
}

async fn server(config: Config) -> anyhow::Result<()> {
    let host = Host::open(config)?;
    host.start_registry().await?;
    host.serve_api(shutdown_flag()).await?;
    Ok(())
}

async fn check(config: Config, file: &PathBuf, spec: ActivitySpec) -> anyhow::Result<()> {
    let host = Host::open(config)?;
    let bytes = std::fs::read(file).with_context(|| format!("read {}", file.display()))?;
    let name = spec.activity_type.clone();
    let activity = host
        .runtime
        .load(spec, &bytes)
        .await
        .with_context(|| format!("{} does not fit as {name}", file.display()))?;
    let params: Vec<String> = activity
        .signature()
        .into_iter()
        .map(|(n, t)| format!("{n}: {t}"))
        .collect();
    println!(
        "{} fits as {name}: calls {}({}), version {}",
        file.display(),
        activity.export_name(),
        params.join(", "),
        activity.digest()
    );
    Ok(())
}
