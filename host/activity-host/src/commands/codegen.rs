//! `codegen`: typed client stubs for activities, from a host's deployed activities (through
//! its REST API) or from a component file (read here).

use std::path::PathBuf;

use activity_codegen::{Activity, Lang};
use activity_runtime::{ActivitySpec, Grants, Runtime, RuntimeConfig};
use anyhow::Context;

use crate::cli::{api_client, ApiArgs};
use crate::config::Config;

/// What `codegen` generates from.
#[derive(clap::Args)]
pub struct CodegenArgs {
    /// python, typescript, rust, go or java.
    #[arg(long)]
    pub lang: String,
    /// Activity types deployed on the host (default: every one); with --file, the one type
    /// name the component is generated as.
    pub names: Vec<String>,
    /// Generate from this component file instead of a host.
    #[arg(long, value_name = "FILE.wasm")]
    pub file: Option<PathBuf>,
    /// With --file: the export to call, when not the type name in kebab case.
    #[arg(long, requires = "file")]
    pub export: Option<String>,
    /// With --file: the task queue the functions schedule on (default:
    /// workflow.temporal.task_queue).
    #[arg(long, requires = "file")]
    pub task_queue: Option<String>,
    /// The package of the module (go: the package clause, default activities; java: the
    /// class Activities's package, default activities).
    #[arg(long)]
    pub package: Option<String>,
    /// Write the module here instead of to stdout.
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub api: ApiArgs,
}

pub async fn codegen(config: &Config, args: CodegenArgs) -> anyhow::Result<()> {
    let lang: Lang = args.lang.parse()?;
    let source = match &args.file {
        Some(file) => {
            let [name] = args.names.as_slice() else {
                anyhow::bail!("with --file, name the one activity type it is generated as");
            };
            let bytes = std::fs::read(file).with_context(|| format!("read {}", file.display()))?;
            // Every capability granted: only the export's types matter here.
            let spec = ActivitySpec {
                export: args.export.clone(),
                grants: Grants {
                    allowed_hosts: vec!["*".into()],
                    key_value_stores: vec!["*".into()],
                    ..Default::default()
                },
                ..ActivitySpec::new(name.clone())
            };
            let runtime = Runtime::new(&RuntimeConfig::default())?;
            let component = runtime
                .load(spec, &bytes)
                .await
                .with_context(|| format!("{} does not load as {name}", file.display()))?;
            let queue = args
                .task_queue
                .clone()
                .unwrap_or_else(|| config.workflow.temporal.task_queue.clone());
            activity_codegen::generate_in(
                lang,
                &[Activity {
                    name,
                    signature: component.signature(),
                }],
                &queue,
                args.package.as_deref(),
            )?
        }
        None => {
            api_client(config, &args.api)
                .codegen(&args.lang, &args.names, args.package.as_deref())
                .await?
        }
    };
    match &args.out {
        Some(path) => {
            std::fs::write(path, source).with_context(|| format!("write {}", path.display()))?
        }
        None => print!("{source}"),
    }
    Ok(())
}
