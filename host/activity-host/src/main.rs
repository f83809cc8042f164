//! `activity-host`: the serverless WebAssembly activity host for Temporal.

use std::path::{Path, PathBuf};

use activity_host::client::{ApiClient, ClientError, DeployOptions};
use activity_host::commands::{self, Output};
use activity_host::config::Config;
use activity_host::dev_server;
use activity_host::host::{shutdown_signal, Host};
use activity_host::live_reload::{BuildTool, LiveReload};
use activity_host::manifest::Manifest;
use activity_host::scaffold;
use activity_runtime::ActivitySpec;
use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::sync::watch;

/// Serverless WebAssembly activity host for Temporal.
#[derive(Parser)]
#[command(
    name = "activity-host",
    version,
    about,
    long_about = "Serverless WebAssembly activity host for Temporal.\n\n\
Runs Temporal activities as WebAssembly components (WASI 0.2, component model), each in a \
sandbox with only the capabilities its deployment grants, next to the native UserWorkflow. \
Deploy a new component and the next activity task runs it, with no restart.\n\n\
Server roles: dev (everything on one machine), worker, server. Client commands (deploy, \
apply, activities, workflow, invoke) talk to a host's REST API.",
    after_help = "Examples:\n  \
activity-host dev\n  \
activity-host deploy my_activity.wasm --name MyActivity --allow-host api.example.com\n  \
activity-host invoke ValidateUser --input '{\"user_id\":\"u1\",\"email\":\"a@b.io\",\"name\":\"Ann\"}'\n  \
activity-host workflow start --user-id u1 --email a@b.io --name Ann --action create --wait\n  \
activity-host config show\n\n\
Configuration: configs/config.yaml (or --config), every key overridable by ACTIVITY_HOST_<SECTION>__<KEY>.\n\
Exit status: 0 on success, 1 on any error (one line on stderr)."
)]
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
    Dev {
        /// Also watch this activity crate: rebuild, deploy and call it on every save (as
        /// `activity-host watch`).
        #[arg(long, value_name = "DIR", requires = "name")]
        watch: Option<PathBuf>,
        #[command(flatten)]
        reload: ReloadArgs,
    },
    /// Watch an activity crate: on every save rebuild it, deploy it to a host and call it
    /// with the sample inputs. A failed build or a refused component leaves the running
    /// version in place.
    Watch {
        /// The activity crate (default: the current directory).
        #[arg(default_value = ".")]
        dir: PathBuf,
        #[command(flatten)]
        reload: ReloadArgs,
        #[command(flatten)]
        grants: GrantArgs,
        /// Config value KEY=VALUE the activity reads through wasi:config (repeatable).
        #[arg(long = "config-value")]
        config_values: Vec<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// The Temporal worker only: native workflows and WASM activities. Run many. Serves
    /// /healthz, /readyz and /metrics on api.listen for its orchestrator.
    Worker,
    /// The REST API only.
    Server,
    /// Deploy a component as an activity type through a host's REST API: a file, or an OCI
    /// artifact that the host pulls (`oci://REGISTRY/REPOSITORY:TAG` or `...@sha256:DIGEST`).
    Deploy {
        /// The component file (.wasm), or oci://REGISTRY/REPOSITORY[:TAG|@sha256:DIGEST].
        #[arg(value_name = "FILE|oci://REF")]
        source: String,
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
    /// Push a component to an OCI registry as a Wasm artifact; prints the manifest digest.
    Push(commands::oci::PushArgs),
    /// Pull a component from an OCI registry, checking its digests.
    Pull(commands::oci::PullArgs),
    /// List, show, roll back or remove deployed activity types.
    Activities {
        #[command(subcommand)]
        command: ActivitiesCommand,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Deploy every activity of a manifest (TOML or YAML) through a host's REST API.
    ///
    /// Each `[activity.NAME]` table names its component (`source`: a file relative to the
    /// manifest, or an OCI artifact `oci://...` the host pulls),
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
    /// Start, show, cancel and list UserWorkflow runs through a host's REST API.
    Workflow {
        #[command(subcommand)]
        command: WorkflowCommand,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Run a deployed activity once, as a Temporal standalone activity, and print its result.
    ///
    /// Each --input is one argument, as JSON, in the order of the export's parameters (the
    /// same convention as `temporal activity execute --input`).
    Invoke {
        /// The activity type.
        name: String,
        /// One argument as JSON (repeatable).
        #[arg(long = "input", short = 'i')]
        inputs: Vec<String>,
        /// The activity id; invoking again with the id of a running execution joins it.
        #[arg(long)]
        activity_id: Option<String>,
        /// Timeout of each attempt, in milliseconds.
        #[arg(long)]
        start_to_close_ms: Option<u64>,
        /// Attempts, 0 for unlimited.
        #[arg(long)]
        maximum_attempts: Option<u32>,
        /// Print the execution's id at once instead of waiting for the result.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Show the effective configuration (file, then environment), secrets masked.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
        /// Print JSON instead of YAML.
        #[arg(long, global = true, value_enum, default_value = "text")]
        output: Output,
    },
    /// Probe a host's health endpoint: exit 0 when it answers 2xx (for container
    /// healthchecks; the image has no curl).
    Health {
        /// The URL to probe.
        #[arg(long, default_value = "http://127.0.0.1:8080/readyz")]
        url: String,
    },
    /// Print a shell completion script: `activity-host completions bash > /etc/bash_completion.d/activity-host`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Scaffold a new activity component crate: WIT world, Rust source, the host's WIT
    /// packages vendored, ready for `cargo build --target wasm32-wasip2` or
    /// `cargo component build`.
    New {
        /// The activity type name (e.g. GreetUser); the crate is named after it in kebab case.
        name: String,
        /// Where to create the crate; default: ./<kebab-name>.
        #[arg(long)]
        dir: Option<PathBuf>,
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
    let outcome = dispatch(cli, config).await;
    telemetry.shutdown();
    outcome
}

async fn dispatch(cli: Cli, config: Config) -> anyhow::Result<()> {
    match cli.command {
        Command::Dev { watch, reload } => {
            let reload = watch.map(|dir| reload.live_reload(dir, DeployOptions::default()));
            dev(config, reload.transpose()?).await
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
        Command::Worker => worker(config).await,
        Command::Server => server(config).await,
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
            api,
        } => {
            let options = DeployOptions {
                export,
                max_memory_bytes: max_memory,
                max_execution_ms,
                max_output_bytes,
                fuel,
                ..grants.deploy_options(config_values)
            };
            let v = api_client(&config, &api)
                .deploy_source(&source, &name, &options)
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
        Command::Push(args) => commands::oci::push(args, &config.oci).await,
        Command::Pull(args) => {
            let max = config.registry.max_component_bytes as u64;
            commands::oci::pull(args, &config.oci, max).await
        }
        Command::Activities { command, api } => activities(&config, command, &api).await,
        Command::Apply { file, prune, api } => apply(&config, &file, prune, &api).await,
        Command::Workflow { command, api } => workflow(&config, command, &api).await,
        Command::Invoke {
            name,
            inputs,
            activity_id,
            start_to_close_ms,
            maximum_attempts,
            no_wait,
            api,
        } => {
            let args = inputs
                .iter()
                .map(|i| {
                    serde_json::from_str::<serde_json::Value>(i)
                        .with_context(|| format!("--input {i:?} is not JSON"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut body = serde_json::json!({"args": args});
            if let Some(id) = activity_id {
                body["activity_id"] = id.into();
            }
            if let Some(ms) = start_to_close_ms {
                body["start_to_close_ms"] = ms.into();
            }
            if let Some(n) = maximum_attempts {
                body["maximum_attempts"] = n.into();
            }
            let v = api_client(&config, &api)
                .invoke(&name, &body, !no_wait)
                .await?;
            print(&api, &v, |v| match v["status"].as_str() {
                Some("COMPLETED") => serde_json::to_string_pretty(&v["result"]).unwrap_or_default(),
                Some("FAILED") => format!(
                    "{} failed: {}",
                    v["activity_id"].as_str().unwrap_or(""),
                    v["error"]["message"].as_str().unwrap_or("")
                ),
                _ => format!(
                    "{} running; follow it at {}",
                    v["activity_id"].as_str().unwrap_or(""),
                    v["location"].as_str().unwrap_or("")
                ),
            });
            if v["status"] == "FAILED" {
                anyhow::bail!("activity {name} failed");
            }
            Ok(())
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
            shown.oci = config.oci.masked();
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&shown)?),
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
        Command::Check { file, name, grants } => {
            let mut spec = ActivitySpec::new(name);
            spec.grants.allowed_hosts = grants.allow_hosts;
            spec.grants.key_value_stores = grants.kv_stores;
            check(config, &file, spec).await
        }
    }
}

/// What the save-to-running loop deploys and calls.
#[derive(clap::Args)]
struct ReloadArgs {
    /// The activity type to deploy the crate as (required with a crate to watch).
    #[arg(long)]
    name: Option<String>,
    /// A sample argument (JSON) to call the activity with after each deploy (repeatable:
    /// one per parameter).
    #[arg(long = "input", short = 'i')]
    inputs: Vec<String>,
    /// The build command.
    #[arg(long, value_enum, default_value = "cargo")]
    build: BuildTool,
}

impl ReloadArgs {
    fn live_reload(self, dir: PathBuf, options: DeployOptions) -> anyhow::Result<LiveReload> {
        let name = self
            .name
            .context("--name: the activity type to deploy the crate as")?;
        let inputs = self
            .inputs
            .iter()
            .map(|i| {
                serde_json::from_str::<serde_json::Value>(i)
                    .with_context(|| format!("--input {i:?} is not JSON"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(LiveReload {
            dir,
            name,
            build: self.build,
            inputs,
            options,
        })
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

impl GrantArgs {
    /// A deploy with these grants and `config` values (`KEY=VALUE`), the rest defaults.
    fn deploy_options(self, config: Vec<String>) -> DeployOptions {
        DeployOptions {
            allow_hosts: self.allow_hosts,
            kv_stores: self.kv_stores,
            config,
            ..Default::default()
        }
    }
}

/// Where the client commands find a host.
#[derive(clap::Args)]
struct ApiArgs {
    /// The host's REST API; default: http:// and api.listen from the configuration.
    #[arg(long, global = true, env = "ACTIVITY_HOST_API")]
    api: Option<String>,
    /// Bearer token for the admin routes; default: api.admin_token from the configuration.
    #[arg(
        long,
        global = true,
        env = "ACTIVITY_HOST_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// Print the API's JSON answer instead of a summary.
    #[arg(long, global = true, value_enum, default_value = "text")]
    output: Output,
}

impl ApiArgs {
    /// This process's own API (api.listen, api.admin_token).
    fn local() -> Self {
        Self {
            api: None,
            token: None,
            output: Output::Text,
        }
    }
}

#[derive(Subcommand)]
enum WorkflowCommand {
    /// Start UserWorkflow; a run with the same id that is still open is answered instead.
    Start {
        /// The user's id.
        #[arg(long)]
        user_id: String,
        /// Email (create, update).
        #[arg(long, default_value = "")]
        email: String,
        /// Display name (create, update).
        #[arg(long, default_value = "")]
        name: String,
        /// create, update or delete.
        #[arg(long)]
        action: String,
        /// Wait until the run closes and print its outcome.
        #[arg(long)]
        wait: bool,
    },
    /// A run's status, and its result, error or progress.
    Show {
        /// The workflow id.
        workflow_id: String,
        /// A specific run.
        #[arg(long)]
        run_id: Option<String>,
    },
    /// Send the cancel signal: the workflow stops before its next step.
    Cancel {
        /// The workflow id.
        workflow_id: String,
    },
    /// Recent runs, newest first.
    List {
        /// Only this user's runs.
        #[arg(long)]
        user_id: Option<String>,
        /// Only runs in this status (RUNNING, COMPLETED, FAILED, CANCELED, ...).
        #[arg(long)]
        status: Option<String>,
        /// Runs per page (1 to 100).
        #[arg(long)]
        page_size: Option<u32>,
        /// The next_page_token of the previous page.
        #[arg(long)]
        page_token: Option<String>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration.
    Show,
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
    .with_token(
        args.token
            .clone()
            .or_else(|| config.api.admin_token.clone()),
    )
}

fn print(
    args: &ApiArgs,
    value: &serde_json::Value,
    summary: impl FnOnce(&serde_json::Value) -> String,
) {
    commands::print(args.output, value, summary)
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
                                let from = match x["source"]["reference"].as_str() {
                                    Some(r) => format!(
                                        ", from {r} ({})",
                                        x["source"]["manifest_digest"].as_str().unwrap_or("")
                                    ),
                                    None => String::new(),
                                };
                                format!(
                                    "{} {:>3} {} {} bytes, by {}{from}",
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

async fn workflow(config: &Config, command: WorkflowCommand, args: &ApiArgs) -> anyhow::Result<()> {
    let client = api_client(config, args);
    let summary = |v: &serde_json::Value| {
        let mut line = format!(
            "{} {} {}",
            v["workflow_id"].as_str().unwrap_or(""),
            v["run_id"].as_str().unwrap_or(""),
            v["status"].as_str().unwrap_or("")
        );
        if !v["result"].is_null() {
            line.push_str(&format!("\nresult: {}", v["result"]));
        }
        if !v["error"].is_null() {
            line.push_str(&format!("\nerror: {}", v["error"]));
        }
        if !v["progress"].is_null() {
            line.push_str(&format!("\nprogress: {}", v["progress"]));
        }
        line
    };
    match command {
        WorkflowCommand::Start {
            user_id,
            email,
            name,
            action,
            wait,
        } => {
            let started = client
                .start_workflow(&serde_json::json!({
                    "user_id": user_id, "email": email, "name": name, "action": action,
                }))
                .await?;
            let id = started["workflow_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let run = started["run_id"].as_str().unwrap_or_default().to_string();
            if !wait {
                print(args, &started, |v| {
                    format!(
                        "started {} (run {})",
                        v["workflow_id"].as_str().unwrap_or(""),
                        v["run_id"].as_str().unwrap_or("")
                    )
                });
                return Ok(());
            }
            loop {
                let v = client.show_workflow(&id, Some(&run)).await?;
                if v["status"] != "RUNNING" {
                    print(args, &v, summary);
                    if v["status"] != "COMPLETED" {
                        anyhow::bail!("workflow {id} ended {}", v["status"]);
                    }
                    return Ok(());
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        WorkflowCommand::Show {
            workflow_id,
            run_id,
        } => {
            let v = client
                .show_workflow(&workflow_id, run_id.as_deref())
                .await?;
            print(args, &v, summary);
        }
        WorkflowCommand::Cancel { workflow_id } => {
            let v = client.cancel_workflow(&workflow_id).await?;
            print(args, &v, |v| {
                format!("cancel sent to {}", v["workflow_id"].as_str().unwrap_or(""))
            });
        }
        WorkflowCommand::List {
            user_id,
            status,
            page_size,
            page_token,
        } => {
            let mut query = Vec::new();
            if let Some(u) = user_id {
                query.push(("user_id", u));
            }
            if let Some(s) = status {
                query.push(("status", s));
            }
            if let Some(n) = page_size {
                query.push(("page_size", n.to_string()));
            }
            if let Some(t) = page_token {
                query.push(("page_token", t));
            }
            let v = client.list_workflows(&query).await?;
            print(args, &v, |v| {
                let mut rows: Vec<String> = v["workflows"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|w| {
                        format!(
                            "{:<40} {:<12} {}",
                            w["workflow_id"].as_str().unwrap_or(""),
                            w["status"].as_str().unwrap_or(""),
                            w["run_id"].as_str().unwrap_or("")
                        )
                    })
                    .collect();
                if let Some(t) = v["next_page_token"].as_str() {
                    rows.push(format!("more: --page-token {t}"));
                }
                if rows.is_empty() {
                    "no runs".into()
                } else {
                    rows.join("\n")
                }
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
            .deploy_source(&activity.source, name, &activity.deploy_options())
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

async fn dev(config: Config, reload: Option<LiveReload>) -> anyhow::Result<()> {
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
        tokio::spawn(
            async move { dev_server::warn_if_slow_dispatch(&t.address, &t.namespace).await },
        );
    }
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

async fn worker(config: Config) -> anyhow::Result<()> {
    let host = Host::open(config).await?;
    host.start_registry().await?;
    if host.config.activities.deploy_reference {
        host.deploy_reference_activities().await?;
    }
    let shutdown = shutdown_flag();
    let ops = {
        let (host, shutdown) = (host.clone(), shutdown.clone());
        tokio::spawn(async move { host.serve_ops(shutdown).await })
    };
    let worked = host.run_worker(shutdown).await;
    ops.await.context("health endpoint task")??;
    worked?;
    Ok(())
}

async fn server(config: Config) -> anyhow::Result<()> {
    let host = Host::open(config).await?;
    host.start_registry().await?;
    if host.config.activities.deploy_reference {
        host.deploy_reference_activities().await?;
    }
    host.serve_api(shutdown_flag()).await?;
    Ok(())
}

async fn check(config: Config, file: &PathBuf, spec: ActivitySpec) -> anyhow::Result<()> {
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
