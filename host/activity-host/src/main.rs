//! `activity-host`: the serverless WebAssembly activity host for Temporal. Parses the
//! command line and the configuration, sets up logs, and hands off to
//! `activity_host::commands::dispatch`.

use std::path::PathBuf;

use activity_host::cli::{Cli, Command};
use activity_host::config::Config;
use clap::Parser;

fn main() -> std::process::ExitCode {
    activity_oci::install_crypto_provider();
    // Library errors are values here (guest failures, refused deploys): capturing a
    // backtrace for each costs more than a whole activity call. Panics keep theirs.
    // Set before any thread starts.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(run()));
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config_path = cli.config.clone().or_else(|| {
        let default = PathBuf::from("configs/config.yaml");
        default.exists().then_some(default)
    });
    let config = Config::load(config_path.as_deref())?;
    // The roles log to stdout, as services do; client commands log to stderr, so their
    // stdout is only their answer (`PINNED=$(activity-host push ... --quiet)`).
    let service = matches!(
        cli.command,
        Command::Dev { .. } | Command::Worker | Command::Server
    );
    let telemetry = activity_host::telemetry::init(&config.telemetry, !service)?;
    let outcome = activity_host::commands::dispatch(cli, config).await;
    telemetry.shutdown();
    outcome
}
