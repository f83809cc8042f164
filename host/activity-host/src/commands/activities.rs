//! `deploy`, `apply` and `activities list|show|rollback|remove`: the registry through a
//! host's REST API.

use std::path::Path;

use crate::cli::{api_client, print, ActivitiesCommand, ApiArgs};
use activity_registry::DeployOutcome;

use crate::client::{ClientError, DeployOptions};
use crate::config::Config;
use crate::manifest::Manifest;

/// One line about a deploy's outcome.
fn deployed_line(name: &str, outcome: &DeployOutcome) -> String {
    let version = &outcome.version;
    let from = version
        .source
        .as_ref()
        .map(|s| format!(" from {}", s.reference))
        .unwrap_or_default();
    if outcome.changed {
        format!(
            "deployed {name}: {} (version {}){from}",
            version.digest, version.seq
        )
    } else {
        format!("{name} already serves {} (unchanged)", version.digest)
    }
}

/// Deploys `source` (a file, or `oci://REF` for the host to pull) as `name`.
pub async fn deploy(
    config: &Config,
    source: &str,
    name: &str,
    options: &DeployOptions,
    api: &ApiArgs,
) -> anyhow::Result<()> {
    let outcome = api_client(config, api)
        .deploy_source(source, name, options)
        .await?;
    print(api, &outcome, |o| deployed_line(name, o));
    Ok(())
}

/// `activities list|show|rollback|remove`.
pub async fn activities(
    config: &Config,
    command: ActivitiesCommand,
    args: &ApiArgs,
) -> anyhow::Result<()> {
    let client = api_client(config, args);
    match command {
        ActivitiesCommand::List => {
            let listed = client.list().await?;
            print(args, &listed, |listed| {
                if listed.is_empty() {
                    return "no activities deployed".into();
                }
                let rows: Vec<String> = listed
                    .iter()
                    .map(|a| {
                        format!(
                            "{:<24} {} (version {})",
                            a.name, a.active_digest, a.active_seq
                        )
                    })
                    .collect();
                rows.join("\n")
            });
        }
        ActivitiesCommand::Show { name } => {
            let details = client.show(&name).await?;
            print(args, &details, |d| {
                let rows: Vec<String> = d
                    .versions
                    .iter()
                    .map(|v| {
                        let from = match &v.source {
                            Some(s) => format!(", from {} ({})", s.reference, s.manifest_digest),
                            None => String::new(),
                        };
                        format!(
                            "{} {:>3} {} {} bytes, by {}{from}",
                            if v.active { "*" } else { " " },
                            v.seq,
                            v.digest,
                            v.size,
                            v.deployed_by
                        )
                    })
                    .collect();
                format!("{name}\n{}", rows.join("\n"))
            });
        }
        ActivitiesCommand::Rollback { name, digest } => {
            let version = client.rollback(&name, digest.as_deref()).await?;
            print(args, &version, |v| {
                format!("{name} now serves {} (version {})", v.digest, v.seq)
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

/// One activity of a manifest after `apply`, as `--json` prints it.
#[derive(serde::Serialize)]
struct Applied {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    changed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    removed: bool,
}

impl Applied {
    fn named(name: &str) -> Self {
        Self {
            name: name.into(),
            changed: None,
            digest: None,
            seq: None,
            error: None,
            removed: false,
        }
    }

    fn line(&self) -> String {
        let name = &self.name;
        match (&self.error, self.removed, self.changed) {
            (Some(e), _, _) => format!("{name:<24} refused: {e}"),
            (None, true, _) => format!("{name:<24} removed"),
            (None, false, Some(true)) => format!(
                "{name:<24} deployed {} (version {})",
                self.digest.as_deref().unwrap_or(""),
                self.seq.unwrap_or(0)
            ),
            _ => format!(
                "{name:<24} unchanged {}",
                self.digest.as_deref().unwrap_or("")
            ),
        }
    }
}

/// `apply FILE [--prune]`: every activity of a manifest, checked whole first.
pub async fn apply(
    config: &Config,
    file: &Path,
    prune: bool,
    args: &ApiArgs,
) -> anyhow::Result<()> {
    let manifest = Manifest::load(file)?;
    let client = api_client(config, args);
    let mut report = Vec::new();
    let mut failed = Vec::new();
    for (name, activity) in &manifest.activity {
        match client
            .deploy_source(&activity.source, name, &activity.deploy_options())
            .await
        {
            Ok(outcome) => report.push(Applied {
                changed: Some(outcome.changed),
                digest: Some(outcome.version.digest.to_string()),
                seq: Some(outcome.version.seq),
                ..Applied::named(name)
            }),
            Err(e @ ClientError::Unreachable { .. }) => return Err(e.into()),
            Err(e) => {
                report.push(Applied {
                    error: Some(e.to_string()),
                    ..Applied::named(name)
                });
                failed.push(name.clone());
            }
        }
    }
    if prune && failed.is_empty() {
        for deployed in client.list().await? {
            if !manifest.activity.contains_key(&deployed.name) {
                client.remove(&deployed.name).await?;
                report.push(Applied {
                    removed: true,
                    ..Applied::named(&deployed.name)
                });
            }
        }
    }
    print(args, &report, |report| {
        let lines: Vec<String> = report.iter().map(Applied::line).collect();
        lines.join("\n")
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
