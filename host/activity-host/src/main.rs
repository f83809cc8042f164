//! `activity-host`: the serverless WebAssembly activity host for Temporal.

use std::path::{Path, PathBuf};

use activity_host::client::{ApiClient, ClientError, DeployOptions};
use activity_host::config::{Config, LogFormat};
use activity_host::dev_server;
use activity_host::host::{shutdown_signal, Host};
use activity_host::manifest::Manifest;
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
    /// Deploy a component as an activity type through a host's REST API.
    Deploy {
        /// The component file (.wasm).
        file: PathBuf,
        /// The activity type name to deploy it as.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        grants: GrantArgs,
        /// Config value KEY=VALUE the activity reads through wasi:config (repeatable).
        #[arg(long = "config-value")]
        config_values: Vec<String>,
        /// The export to call, when not the type name in kebab case.
        #[arg(long)]
        export: Option<String>,
        /// Memory limit per call, in bytes.
        #[arg(long)]
        max_memory: Option<u64>,
        /// Time limit per call, in milliseconds.
        #[arg(long)]
        max_execution_ms: Option<u64>,
        /// Largest result per call, in bytes.
        #[arg(long)]
        max_output_bytes: Option<u64>,
        /// Fuel budget per call (only enforced when the host counts fuel).
        #[arg(long)]
        fuel: Option<u64>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List, show, roll back or remove deployed activity types.
    Activities {
        #[command(subcommand)]
        command: ActivitiesCommand,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Deploy every activity of a manifest (TOML or YAML) through a host's REST API.
    ///
    /// Each `[activity.NAME]` table names its component (`source`, relative to the manifest),
    /// and optionally `export`, `allowed_hosts`, `key_value_stores`, `config` and `limits`.
    /// Activities whose bytes and settings are unchanged stay as they are. The manifest is
    /// checked whole before anything is deployed; a refused activity does not stop the others,
    /// and the command then fails naming it.
    Apply {
        /// The manifest (.toml, .yaml or .yml).
        file: PathBuf,
        /// Also remove deployed activity types the manifest does not name (only when every
        /// deploy succeeded).
        #[arg(long)]
        prune: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Tell whether a component fits the host as an activity type, and why not.
    Check {
        /// The component file.
        file: PathBuf,
        /// The activity type name it would be deployed as.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        grants: GrantArgs,
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
    let cli = Cli::parse();
    let config_path = cli.config.clone().or_else(|| {
        let default = PathBuf::from("configs/config.yaml");
        default.exists().then_some(default)
    });
    let config = Config::load(config_path.as_deref())?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.telemetry.log_level));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match config.telemetry.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
    match cli.command {
        Command::Dev => dev(config).await,
        Command::Worker => worker(config).await,
        Command::Server => server(config).await,
        Command::Deploy {
            file,
            name,
            grants,
            config_values,
            export,
            max_memory,
            max_execution_ms,
            max_output_bytes,
            fuel,
            api,
        } => {
            let options = DeployOptions {
                allow_hosts: grants.allow_hosts,
                kv_stores: grants.kv_stores,
                config: config_values,
                export,
                max_memory_bytes: max_memory,
                max_execution_ms,
                max_output_bytes,
                fuel,
            };
            let v = api_client(&config, &api)
                .deploy(&file, &name, &options)
                .await?;
            print(&api, &v, |v| {
                let version = &v["version"];
                if v["changed"] == true {
                    format!(
                        "deployed {name}: {} (version {})",
                        version["digest"].as_str().unwrap_or(""),
                        version["seq"]
                    )
                } else {
                    format!(
                        "{name} already serves {} (unchanged)",
                        version["digest"].as_str().unwrap_or("")
                    )
                }
            });
            Ok(())
        }
        Command::Activities { command, api } => activities(&config, command, &api).await,
        Command::Apply { file, prune, api } => apply(&config, &file, prune, &api).await,
        Command::Check { file, name, grants } => {
            let mut spec = ActivitySpec::new(name);
            spec.grants.allowed_hosts = grants.allow_hosts;
            spec.grants.key_value_stores = grants.kv_stores;
            check(config, &file, spec).await
        }
    }
}

/// The grants a deployment (or a check) names on the command line.
#[derive(clap::Args)]
struct GrantArgs {
    /// Host the activity may call over outgoing HTTP (repeatable).
    #[arg(long = "allow-host")]
    allow_hosts: Vec<String>,
    /// Key-value store the activity may open (repeatable).
    #[arg(long = "kv-store")]
    kv_stores: Vec<String>,
}

/// Where the client commands find a host.
#[derive(clap::Args)]
struct ApiArgs {
    /// The host's REST API; default: http:// and api.listen from the configuration.
    #[arg(long, global = true, env = "ACTIVITY_HOST_API")]
    api: Option<String>,
    /// Print the API's JSON answer instead of a summary.
    #[arg(long, global = true, value_enum, default_value = "text")]
    output: Output,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
enum ActivitiesCommand {
    /// Activity types and their active versions.
    List,
    /// One activity type's versions.
    Show { name: String },
    /// Make the previous version (or --digest) active again.
    Rollback {
        name: String,
        /// The version to return to.
        #[arg(long)]
        digest: Option<String>,
    },
    /// Stop serving an activity type and forget its history.
    Remove { name: String },
}

fn api_client(config: &Config, args: &ApiArgs) -> ApiClient {
    ApiClient::new(
        &args
            .api
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.api.listen)),
    )
}

fn print(
    args: &ApiArgs,
    value: &serde_json::Value,
    summary: impl FnOnce(&serde_json::Value) -> String,
) {
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
        Output::Text => println!("{}", summary(value)),
    }
}

async fn activities(
    config: &Config,
    command: ActivitiesCommand,
    args: &ApiArgs,
) -> anyhow::Result<()> {
    let client = api_client(config, args);
    match command {
        ActivitiesCommand::List => {
            let v = client.list().await?;
            print(args, &v, |v| {
                let rows: Vec<String> = v
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|x| {
                                format!(
                                    "{:<24} {} (version {})",
                                    x["name"].as_str().unwrap_or(""),
                                    x["active_digest"].as_str().unwrap_or(""),
                                    x["active_seq"]
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if rows.is_empty() {
                    "no activities deployed".into()
                } else {
                    rows.join("\n")
                }
            });
        }
        ActivitiesCommand::Show { name } => {
            let v = client.show(&name).await?;
            print(args, &v, |v| {
                let rows: Vec<String> = v["versions"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|x| {
                                format!(
                                    "{} {:>3} {} {} bytes, by {}",
                                    if x["active"] == true { "*" } else { " " },
                                    x["seq"].as_u64().unwrap_or(0),
                                    x["digest"].as_str().unwrap_or(""),
                                    x["size"],
                                    x["deployed_by"].as_str().unwrap_or("")
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                format!("{name}\n{}", rows.join("\n"))
            });
        }
        ActivitiesCommand::Rollback { name, digest } => {
            let v = client.rollback(&name, digest.as_deref()).await?;
            print(args, &v, |v| {
                format!(
                    "{name} now serves {} (version {})",
                    v["digest"].as_str().unwrap_or(""),
                    v["seq"]
                )
            });
        }
        ActivitiesCommand::Remove { name } => {
            client.remove(&name).await?;
            print(args, &serde_json::json!({"removed": name}), |_| {
                format!("{name} removed")
            });
        }
    }
    Ok(())
}

async fn apply(config: &Config, file: &Path, prune: bool, args: &ApiArgs) -> anyhow::Result<()> {
    let manifest = Manifest::load(file)?;
    let client = api_client(config, args);
    let mut report = Vec::new();
    let mut failed = Vec::new();
    for (name, activity) in &manifest.activity {
        match client
            .deploy(&activity.source, name, &activity.deploy_options())
            .await
        {
            Ok(v) => report.push(serde_json::json!({
                "name": name,
                "changed": v["changed"],
                "digest": v["version"]["digest"],
                "seq": v["version"]["seq"],
            })),
            Err(e @ ClientError::Unreachable { .. }) => return Err(e.into()),
            Err(e) => {
                report.push(serde_json::json!({"name": name, "error": e.to_string()}));
                failed.push(name.clone());
            }
        }
    }
    if prune && failed.is_empty() {
        let listed = client.list().await?;
        for deployed in listed.as_array().into_iter().flatten() {
            let Some(name) = deployed["name"].as_str() else {
                continue;
            };
            if !manifest.activity.contains_key(name) {
                client.remove(name).await?;
                report.push(serde_json::json!({"name": name, "removed": true}));
            }
        }
    }
    print(args, &serde_json::Value::Array(report), |v| {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let name = r["name"].as_str().unwrap_or("");
                if let Some(e) = r["error"].as_str() {
                    format!("{name:<24} refused: {e}")
                } else if r["removed"] == true {
                    format!("{name:<24} removed")
                } else if r["changed"] == true {
                    format!(
                        "{name:<24} deployed {} (version {})",
                        r["digest"].as_str().unwrap_or(""),
                        r["seq"]
                    )
                } else {
                    format!(
                        "{name:<24} unchanged {}",
                        r["digest"].as_str().unwrap_or("")
                    )
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    if !failed.is_empty() {
        anyhow::bail!(
            "{} of {} activities refused: {}",
            failed.len(),
            manifest.activity.len(),
            failed.join(", ")
        );
    }
    Ok(())
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
