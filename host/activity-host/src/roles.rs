//! The server roles: `dev` (the dev server when none answers, worker and API in one
//! process), `worker`, `server`, and `check` (does a component fit, without a Temporal).

use std::path::PathBuf;

use activity_runtime::ActivitySpec;
use anyhow::Context;
use tokio::sync::watch;

use crate::cli::{api_client, ApiArgs};
use crate::config::Config;
use crate::dev_server;
use crate::host::{shutdown_signal, Host};
use crate::live_reload::LiveReload;

/// A shutdown flag set on Ctrl-C or SIGTERM, after `api.shutdown_delay_ms` during which
/// `/readyz` answers 503 and everything else is still served.
fn shutdown_flag(host: &Host) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    let readiness = host.readiness.clone();
    let delay = std::time::Duration::from_millis(host.config.api.shutdown_delay_ms);
    tokio::spawn(async move {
        shutdown_signal().await;
        readiness
            .draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if !delay.is_zero() {
            tracing::info!(
                delay_ms = delay.as_millis() as u64,
                "shutting down: /readyz answers 503 while requests are still served"
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                // A second signal: stop now.
                _ = shutdown_signal() => {}
            }
        }
        tracing::info!("shutting down: finishing requests and running activities");
        let _ = tx.send(true);
    });
    rx
}

/// `dev`: the dev server when none answers, the registry with the reference activities,
/// the API and the worker; with `reload`, the save-to-running loop too.
pub async fn dev(config: Config, reload: Option<LiveReload>) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir.0)?;
    let temporal = tokio::task::spawn_blocking({
        let config = config.clone();
        move || dev_server::ensure(&config)
    })
    .await??;
    let host = Host::open(config).await?;
    host.start_registry().await?;
    host.deploy_reference_activities().await?;
    if temporal.is_none() {
        // Someone else's server: tell the user when it holds every task ~40 ms.
        let t = host.config.workflow.temporal.clone();
        tokio::spawn(async move { dev_server::warn_if_slow_dispatch(&t).await });
    }
    let shutdown = shutdown_flag(&host);
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
    if let Some(reload) = reload {
        let client = api_client(&host.config, &ApiArgs::local());
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = reload.run(&client, stopped).await {
                tracing::error!(error = %e, "the watch loop stopped");
            }
        });
    }
    let worker = host.run_worker(shutdown).await;
    let api = api.await.context("REST API task")?;
    drop(temporal);
    worker?;
    api?;
    Ok(())
}

/// `worker`: the Temporal worker, with `/healthz`, `/readyz` and `/metrics` only.
pub async fn worker(config: Config) -> anyhow::Result<()> {
    let host = Host::open(config).await?;
    host.start_registry().await?;
    if host.config.activities.deploy_reference {
        host.deploy_reference_activities().await?;
    }
    let shutdown = shutdown_flag(&host);
    let ops = {
        let (host, shutdown) = (host.clone(), shutdown.clone());
        tokio::spawn(async move { host.serve_ops(shutdown).await })
    };
    let worked = host.run_worker(shutdown).await;
    ops.await.context("health endpoint task")??;
    worked?;
    Ok(())
}

/// `server`: the REST API only.
pub async fn server(config: Config) -> anyhow::Result<()> {
    let host = Host::open_without_execution(config).await?;
    host.start_registry().await?;
    if host.config.activities.deploy_reference {
        host.deploy_reference_activities().await?;
    }
    host.serve_api(shutdown_flag(&host)).await?;
    Ok(())
}

/// `check FILE --name TYPE`: does a component fit, and its signature.
pub async fn check(config: Config, file: &PathBuf, spec: ActivitySpec) -> anyhow::Result<()> {
    let host = Host::open(config).await?;
    let bytes = std::fs::read(file).with_context(|| format!("read {}", file.display()))?;
    let name = spec.activity_type.clone();
    let activity = host
        .runtime
        .load(spec, &bytes)
        .await
        .with_context(|| format!("{} does not fit as {name}", file.display()))?;
    let params: Vec<String> = activity
        .signature()
        .params
        .iter()
        .map(|p| format!("{}: {}", p.name, p.ty.name()))
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
