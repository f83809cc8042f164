//! `deploy`, `apply` and `activities list|show|rollback|remove`: the registry through a
//! host's REST API.

use std::path::Path;

use crate::cli::{api_client, print, ActivitiesCommand, ApiArgs};
use crate::client::{ClientError, DeployOptions};
use crate::config::Config;
use crate::manifest::Manifest;

/// Deploys `source` (a file, or `oci://REF` for the host to pull) as `name`.
pub async fn deploy(
    config: &Config,
    source: &str,
    name: &str,
    options: &DeployOptions,
    api: &ApiArgs,
) -> anyhow::Result<()> {
    let v = api_client(config, api)
        .deploy_source(source, name, options)
        .await?;
    print(api, &v, |v| {
        let version = &v["version"];
        let from = version["source"]["reference"]
            .as_str()
            .map(|r| format!(" from {r}"))
            .unwrap_or_default();
        if v["changed"] == true {
            format!(
                "deployed {name}: {} (version {}){from}",
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

/// `activities list|show|rollback|remove`.
pub async fn activities(
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
