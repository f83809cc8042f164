//! `activity-host`: the serverless WebAssembly activity host for Temporal.

use std::path::PathBuf;
use std::sync::Arc;

use activity_host::config::Config;
use activity_host::reference;
use activity_runtime::{ActivitySpec, Runtime, RuntimeConfig, SqliteKeyValue};
use anyhow::Context;
use clap::{Parser, Subcommand};

/// Serverless WebAssembly activity host for Temporal.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Configuration file (YAML); environment variables ACTIVITY_HOST_* override it.
    #[arg(long, global = true, env = "ACTIVITY_HOST_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Everything on one machine with embedded defaults. For now: load the reference
    /// activities and print what the host would serve.
    Dev,
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
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
        Command::Dev => dev(&config).await,
        Command::Check {
            file,
            name,
            allow_hosts,
            kv_stores,
        } => {
            let mut spec = ActivitySpec::new(name);
            spec.grants.allowed_hosts = allow_hosts;
            spec.grants.key_value_stores = kv_stores;
            check(&config, &file, spec).await
        }
    }
}

fn runtime(config: &Config) -> anyhow::Result<Runtime> {
    std::fs::create_dir_all(&config.data_dir.0)
        .with_context(|| format!("create data directory {}", config.data_dir.0.display()))?;
    let kv = SqliteKeyValue::open(&config.store_path())
        .with_context(|| format!("open store {}", config.store_path().display()))?;
    let runtime = Runtime::new(&RuntimeConfig {
        engine: config.runtime.engine.clone(),
        cache_dir: Some(config.compiled_cache_dir()),
    })?;
    Ok(runtime.with_key_value(Arc::new(kv)))
}

async fn dev(config: &Config) -> anyhow::Result<()> {
    let rt = runtime(config)?;
    println!(
        "activity-host would serve on task queue {:?} (namespace {:?}, Temporal at {}):",
        config.workflow.temporal.task_queue,
        config.workflow.temporal.namespace,
        config.workflow.temporal.address
    );
    for (name, file) in reference::REFERENCE_ACTIVITIES {
        let path = config.activities.components_dir.join(file);
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "read {} (build the guests with `make guests`)",
                path.display()
            )
        })?;
        let mut spec = reference::spec(name, None);
        spec.limits = config.runtime.limits;
        let activity = rt
            .load(spec, &bytes)
            .await
            .with_context(|| format!("load {name}"))?;
        let params: Vec<String> = activity
            .signature()
            .into_iter()
            .map(|(n, t)| format!("{n}: {t}"))
            .collect();
        println!(
            "  {name:<17} {} {}({}){}",
            activity.digest(),
            activity.export_name(),
            params.join(", "),
            if activity.loaded_from_cache() {
                " [cached]"
            } else {
                ""
            }
        );
    }
    println!("The Temporal worker and REST API are not wired in yet.");
    Ok(())
}

async fn check(config: &Config, file: &PathBuf, spec: ActivitySpec) -> anyhow::Result<()> {
    let rt = runtime(config)?;
    let bytes = std::fs::read(file).with_context(|| format!("read {}", file.display()))?;
    let name = spec.activity_type.clone();
    let activity = rt
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
