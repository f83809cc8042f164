//! What each command does, one room per family: `activities` (deploy, apply, the
//! `activities` subcommands), `workflow` (`workflow`, `invoke`), `oci` (`push`, `pull`), and
//! the roles in [`crate::roles`]. [`dispatch`] hands a parsed command to its room.

pub mod access;
pub mod activities;
pub mod codegen;
pub mod oci;
pub mod usage;
pub mod workflow;

use std::path::PathBuf;

use anyhow::Context;

use crate::cli::{api_client, Cli, Command, ConfigCommand};
use crate::client::DeployOptions;
use crate::config::Config;
use crate::host::shutdown_signal;
use crate::roles;
use crate::scaffold;
use activity_runtime::ActivitySpec;

/// How a command prints its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// A summary for people.
    Text,
    /// The JSON answer.
    Json,
    /// Comma-separated rows with a header, for commands that print a table (`usage`);
    /// others print their JSON answer.
    Csv,
}

/// Prints `value` as JSON, or the summary.
pub fn print<T: serde::Serialize>(output: Output, value: &T, summary: impl FnOnce(&T) -> String) {
    match output {
        Output::Json | Output::Csv => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
        Output::Text => println!("{}", summary(value)),
    }
}

/// Runs the command `cli` names with `config`.
pub async fn dispatch(cli: Cli, config: Config) -> anyhow::Result<()> {
    match cli.command {
        Command::Dev { watch, reload } => {
            let reload = watch.map(|dir| reload.live_reload(dir, DeployOptions::default()));
            roles::dev(config, reload.transpose()?).await
        }
        Command::Watch {
            dir,
            reload,
            grants,
            config_values,
            api,
        } => {
            let reload = reload.live_reload(dir, grants.deploy_options(config_values))?;
            reload
                .run(&api_client(&config, &api), shutdown_signal())
                .await?;
            Ok(())
        }
        Command::Worker => roles::worker(config).await,
        Command::Server => roles::server(config).await,
        Command::Deploy {
            source,
            name,
            grants,
            config_values,
            export,
            max_memory,
            max_execution_ms,
            max_output_bytes,
            fuel,
            max_concurrent,
            rollout,
            ramp_percent,
            api,
        } => {
            let options = DeployOptions {
                rollout,
                ramp_percent,
                export,
                max_memory_bytes: max_memory,
                max_execution_ms,
                max_output_bytes,
                fuel,
                max_concurrent,
                ..grants.deploy_options(config_values)
            };
            activities::deploy(&config, &source, &name, &options, &api).await
        }
        Command::Push(args) => oci::push(args, &config.oci).await,
        Command::Pull(args) => {
            let max = config.registry.max_component_bytes as u64;
            oci::pull(args, &config.oci, max).await
        }
        Command::Activities { command, api } => {
            activities::activities(&config, command, &api).await
        }
        Command::Keys { command, api } => access::keys(&config, command, &api).await,
        Command::Secrets { command, api } => access::secrets(&config, command, &api).await,
        Command::Verify {
            name,
            file,
            last,
            export,
            grants,
            config_values,
            api,
        } => {
            let options = DeployOptions {
                export,
                ..grants.deploy_options(config_values)
            };
            activities::verify(&config, &name, &file, last, &options, &api).await
        }
        Command::Apply { file, prune, api } => activities::apply(&config, &file, prune, &api).await,
        Command::Workflow { command, api } => workflow::workflow(&config, command, &api).await,
        Command::Invoke {
            name,
            inputs,
            activity_id,
            start_to_close_ms,
            maximum_attempts,
            no_wait,
            api,
        } => {
            let call = workflow::Invoke {
                name,
                inputs,
                activity_id,
                start_to_close_ms,
                maximum_attempts,
                wait: !no_wait,
            };
            workflow::invoke(&config, call, &api).await
        }
        Command::Config {
            command: ConfigCommand::Show,
            output,
        } => {
            let mut shown = config.clone();
            if shown.api.admin_token.is_some() {
                shown.api.admin_token = Some("********".into());
            }
            shown.registry.postgres_url = config.masked_postgres_url();
            if shown.registry.secrets_key.is_some() {
                shown.registry.secrets_key = Some("********".into());
            }
            shown.oci = config.oci.masked();
            shown.workflow.temporal = config.workflow.temporal.masked();
            match output {
                Output::Json | Output::Csv => {
                    println!("{}", serde_json::to_string_pretty(&shown)?)
                }
                Output::Text => print!("{}", serde_yaml::to_string(&shown)?),
            }
            Ok(())
        }
        Command::Health { url } => {
            let res = reqwest::Client::new()
                .get(&url)
                .timeout(std::time::Duration::from_secs(5))
                .send()
                .await
                .with_context(|| format!("{url} does not answer"))?;
            let status = res.status();
            let body = res.text().await.unwrap_or_default();
            if !status.is_success() {
                anyhow::bail!("{url} answered {status}: {body}");
            }
            println!("{body}");
            Ok(())
        }
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "activity-host", &mut std::io::stdout());
            Ok(())
        }
        Command::New { name, dir } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(scaffold::kebab(&name)));
            scaffold::scaffold(&name, &dir)?;
            let wasm = scaffold::kebab(&name).replace('-', "_");
            println!("created {} for activity type {name}", dir.display());
            println!("  cd {}", dir.display());
            println!("  cargo build --release --target wasm32-wasip2   # or: cargo component build --release");
            println!(
                "  activity-host deploy target/wasm32-wasip2/release/{wasm}.wasm --name {name}"
            );
            println!("  activity-host invoke {name} --input '{{\"name\":\"Ann\"}}'");
            println!("  activity-host watch . --name {name} --input '{{\"name\":\"Ann\"}}'   # rebuild, deploy, call on every save");
            Ok(())
        }
        Command::Codegen(args) => codegen::codegen(&config, args).await,
        Command::Usage(args) => usage::usage(&config, args).await,
        Command::Check { file, name, grants } => {
            let mut spec = ActivitySpec::new(name);
            spec.grants.allowed_hosts = grants.allow_hosts;
            spec.grants.key_value_stores = grants.kv_stores;
            roles::check(config, &file, spec).await
        }
    }
}
