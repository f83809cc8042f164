//! The command line: clap's types for every command and their shared arguments. `main.rs`
//! parses [`Cli`] and hands it to [`crate::commands::dispatch`].

use activity_registry::rollout::RolloutPolicy;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::client::{ApiClient, DeployOptions};
use crate::commands::{self, Output};
use crate::config::Config;
use crate::live_reload::{BuildTool, LiveReload};

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
pub struct Cli {
    /// Configuration file (YAML); ACTIVITY_HOST_* environment variables override its keys.
    /// Default: configs/config.yaml when it exists, else built-in defaults.
    #[arg(long, global = true, env = "ACTIVITY_HOST_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
        /// Calls of this type running at once on each host (default: twice the cores, at
        /// least 4); more wait for a turn.
        #[arg(long)]
        max_concurrent: Option<u32>,
        /// How the version reaches calls: immediate, pinned (runs keep the version they
        /// first used) or ramp (a candidate for --ramp percent of runs); default: the host's
        /// registry.rollout.policy.
        #[arg(long, value_parser = parse_policy)]
        rollout: Option<RolloutPolicy>,
        /// With --rollout ramp, the candidate's share of runs (0..100).
        #[arg(long = "ramp", value_parser = clap::value_parser!(u8).range(0..=100))]
        ramp_percent: Option<u8>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Run a candidate component on the inputs of the last completed executions of an
    /// activity type that Temporal recorded, in the sandbox (key-value writes to a scratch
    /// layer, outgoing HTTP refused), and compare its results with the recorded ones. Exits
    /// non-zero when any case differs or fails.
    Verify {
        /// The activity type.
        name: String,
        /// The candidate component (.wasm).
        file: PathBuf,
        /// How many recorded executions, newest first (1..500; default 20).
        #[arg(long)]
        last: Option<u64>,
        /// The candidate's export, when not the type name in kebab case.
        #[arg(long)]
        export: Option<String>,
        #[command(flatten)]
        grants: GrantArgs,
        /// Config value KEY=VALUE the activity reads through wasi:config (repeatable).
        #[arg(long = "config-value")]
        config_values: Vec<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Typed client stubs (Python, TypeScript, Rust) for activities: the types of their WIT
    /// signatures and one function per activity that schedules it by type name from a
    /// workflow. From a host's deployed activities, or from a component file with --file.
    Codegen(commands::codegen::CodegenArgs),
    /// What calls cost over the fleet, by activity type or caller: calls, failures, wall
    /// and CPU time, peak memory, fuel, outgoing requests and bytes.
    Usage(commands::usage::UsageArgs),
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
    /// API keys (admin): create (the token is printed once), list, revoke.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Secrets (admin): set (the value is read from standard input), list, remove. Values
    /// are never shown.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
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

/// What the save-to-running loop deploys and calls.
#[derive(clap::Args)]
pub struct ReloadArgs {
    /// The activity type to deploy the crate as (required with a crate to watch).
    #[arg(long)]
    pub name: Option<String>,
    /// A sample argument (JSON) to call the activity with after each deploy (repeatable:
    /// one per parameter).
    #[arg(long = "input", short = 'i')]
    pub inputs: Vec<String>,
    /// The build command.
    #[arg(long, value_enum, default_value = "cargo")]
    pub build: BuildTool,
}

/// `--input` values: one JSON text per parameter.
pub fn json_inputs(inputs: &[String]) -> anyhow::Result<Vec<serde_json::Value>> {
    inputs
        .iter()
        .map(|i| {
            serde_json::from_str::<serde_json::Value>(i)
                .with_context(|| format!("--input {i:?} is not JSON"))
        })
        .collect()
}

impl ReloadArgs {
    /// The save-to-running loop over `dir`.
    pub fn live_reload(self, dir: PathBuf, options: DeployOptions) -> anyhow::Result<LiveReload> {
        let name = self
            .name
            .context("--name: the activity type to deploy the crate as")?;
        let inputs = json_inputs(&self.inputs)?;
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
pub struct GrantArgs {
    /// Host the activity may call over outgoing HTTP (repeatable).
    #[arg(long = "allow-host")]
    pub allow_hosts: Vec<String>,
    /// Key-value store the activity may open (repeatable).
    #[arg(long = "kv-store")]
    pub kv_stores: Vec<String>,
    /// Secret the activity may use (repeatable): it reads a placeholder under the name
    /// through wasi:config; the host puts the value in its place only in requests to the
    /// secret's hosts.
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
}

impl GrantArgs {
    /// A deploy with these grants and `config` values (`KEY=VALUE`), the rest defaults.
    pub fn deploy_options(self, config: Vec<String>) -> DeployOptions {
        DeployOptions {
            allow_hosts: self.allow_hosts,
            kv_stores: self.kv_stores,
            secrets: self.secrets,
            config,
            ..Default::default()
        }
    }
}

/// Where the client commands find a host.
#[derive(clap::Args)]
pub struct ApiArgs {
    /// The host's REST API; default: http:// and api.listen from the configuration.
    #[arg(long, global = true, env = "ACTIVITY_HOST_API")]
    pub api: Option<String>,
    /// Bearer token: an API key or the admin token (needed when the host has auth on);
    /// default: api.admin_token from the configuration.
    #[arg(
        long,
        global = true,
        env = "ACTIVITY_HOST_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// text (a summary), json (the API's answer) or csv (tables such as usage's).
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub output: Output,
}

impl ApiArgs {
    /// This process's own API (api.listen, api.admin_token).
    pub fn local() -> Self {
        Self {
            api: None,
            token: None,
            output: Output::Text,
        }
    }
}

#[derive(Subcommand)]
pub enum WorkflowCommand {
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
pub enum ConfigCommand {
    /// Print the effective configuration.
    Show,
}

#[derive(Subcommand)]
pub enum ActivitiesCommand {
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
    /// Give the candidate of a ramp another share of runs.
    Ramp {
        name: String,
        /// Percent of runs, 0..100.
        #[arg(value_parser = clap::value_parser!(u64).range(0..=100))]
        percent: u64,
    },
    /// Make the candidate active for every run (pinned runs keep their version).
    Promote { name: String },
    /// The outgoing requests this host's calls of an activity type made (allowed and
    /// refused), oldest first.
    Egress {
        name: String,
        /// Only those at or after this time (ms since the Unix epoch).
        #[arg(long)]
        since: Option<u64>,
    },
    /// Drop the candidate: later calls and retries go to the active version.
    Abort {
        name: String,
        /// Why, for the rollout's events.
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its token (shown once: only its hash is stored).
    Create {
        /// Who or what holds it.
        name: String,
        /// admin, deployer, invoker or reader.
        #[arg(long)]
        role: String,
        /// Activity type it may act on (repeatable); default: all.
        #[arg(long = "activity")]
        activities: Vec<String>,
        /// Invokes and workflow starts a minute.
        #[arg(long)]
        per_minute: Option<u32>,
        /// CPU milliseconds its invokes may use a minute, over the fleet.
        #[arg(long)]
        cpu_ms_per_minute: Option<u64>,
        /// Key-value store its deploys may grant (repeatable; NAME, PREFIX* or *); default:
        /// every store for a key of all activity types, none for a key limited to some.
        #[arg(long = "kv-store")]
        kv_stores: Option<Vec<String>>,
        /// Secret its deploys may grant (repeatable), likewise.
        #[arg(long = "secret")]
        secrets: Option<Vec<String>>,
    },
    /// Every key (revoked ones too), without tokens.
    List,
    /// Revoke a key on every host.
    Revoke { id: String },
}

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Set a secret; its value is read from standard input (one trailing newline dropped).
    Set {
        name: String,
        /// Host the value may be sent to, over TLS only (repeatable, at least one);
        /// http://HOST also allows plain HTTP.
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
    },
    /// Names and hosts of the secrets.
    List,
    /// Remove a secret.
    Remove { name: String },
}

fn parse_policy(s: &str) -> Result<RolloutPolicy, String> {
    s.parse()
}

pub fn api_client(config: &Config, args: &ApiArgs) -> ApiClient {
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

/// Prints `value` as the command line asked: JSON, or `summary` of it.
pub fn print<T: serde::Serialize>(args: &ApiArgs, value: &T, summary: impl FnOnce(&T) -> String) {
    commands::print(args.output, value, summary)
}
