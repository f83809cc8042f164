//! `activity-host push FILE REF` and `activity-host pull REF -o FILE`: components as Wasm
//! OCI artifacts, with the credentials of the configuration (`oci.registries`), the Docker
//! config file, or `--username` with `--password-stdin`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use activity_oci::{ArtifactRef, Credentials, OciClient, OciSettings};
use anyhow::Context;

use super::{print, Output};

/// How to reach the registry.
#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    /// Plain HTTP instead of HTTPS (loopback registries get plain HTTP anyway, as with
    /// Docker, unless oci.registries says `insecure: false`).
    #[arg(long)]
    pub insecure: bool,
    /// User name for the registry (basic authentication); the password is read from stdin.
    #[arg(long, requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the password (or access token) for --username from standard input.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Print JSON instead of a summary.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
}

impl RegistryArgs {
    fn client(&self, settings: &OciSettings) -> anyhow::Result<OciClient> {
        let credentials = match &self.username {
            Some(user) => {
                let mut password = String::new();
                std::io::stdin()
                    .read_to_string(&mut password)
                    .context("read the password from stdin")?;
                Some(Credentials::basic(
                    user.clone(),
                    password.trim_end_matches(['\r', '\n']).to_string(),
                ))
            }
            None => None,
        };
        Ok(OciClient::new(settings.clone())
            .insecure(self.insecure)
            .with_credentials(credentials))
    }
}

/// `push`'s arguments.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The component (.wasm).
    pub file: PathBuf,
    /// Where to push: REGISTRY/REPOSITORY:TAG (with or without oci://).
    pub reference: String,
    /// Annotation KEY=VALUE on the manifest (repeatable), e.g.
    /// org.opencontainers.image.source=https://github.com/acme/activities.
    #[arg(long = "annotation")]
    pub annotations: Vec<String>,
    /// Print only the pinned reference (REGISTRY/REPOSITORY@sha256:DIGEST), for scripts.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `pull`'s arguments.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// What to pull: REGISTRY/REPOSITORY:TAG or REGISTRY/REPOSITORY@sha256:DIGEST (with or
    /// without oci://).
    pub reference: String,
    /// Where to write the component; default: the repository's last segment + .wasm.
    #[arg(short = 'o', long = "out")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Pushes a component and prints its digest and pinned reference.
pub async fn push(args: PushArgs, settings: &OciSettings) -> anyhow::Result<()> {
    let reference = ArtifactRef::parse(&args.reference)?;
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let mut annotations = BTreeMap::new();
    for a in &args.annotations {
        let (k, v) = a
            .split_once('=')
            .with_context(|| format!("--annotation must be KEY=VALUE, found {a:?}"))?;
        annotations.insert(k.to_string(), v.to_string());
    }
    let title = args
        .file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("component.wasm")
        .to_string();
    let pushed = args
        .registry
        .client(settings)?
        .push(&reference, bytes, &title, annotations)
        .await?;
    if args.quiet {
        println!("{}", pushed.pinned);
        return Ok(());
    }
    print(args.registry.output, &pushed, |p| {
        format!(
            "pushed {} ({} bytes)\ndigest: {}\ndeploy it: activity-host deploy oci://{} --name NAME",
            p.reference, p.size, p.digest, p.pinned
        )
    });
    Ok(())
}

/// Pulls a component, checks it, and writes it to a file.
pub async fn pull(args: PullArgs, settings: &OciSettings, max_bytes: u64) -> anyhow::Result<()> {
    let reference = ArtifactRef::parse(&args.reference)?;
    let pulled = args
        .registry
        .client(settings)?
        .pull(&reference, max_bytes)
        .await?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("{}.wasm", reference.short_name())));
    std::fs::write(&out, &pulled.bytes)
        .with_context(|| format!("cannot write {}", out.display()))?;
    let answer = serde_json::json!({
        "reference": reference.whole(),
        "digest": pulled.manifest_digest,
        "pinned": reference.pinned(&pulled.manifest_digest),
        "layer_digest": pulled.layer_digest,
        "size": pulled.bytes.len(),
        "file": out.display().to_string(),
    });
    print(args.registry.output, &answer, |a| {
        format!(
            "pulled {} ({} bytes) to {}\ndigest: {}",
            reference.whole(),
            a["size"],
            out.display(),
            pulled.manifest_digest
        )
    });
    Ok(())
}
