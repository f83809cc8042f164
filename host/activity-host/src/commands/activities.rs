//! `deploy`, `apply` and `activities list|show|rollback|remove`: the registry through a
//! host's REST API.

use std::path::Path;

use crate::cli::{api_client, print, ActivitiesCommand, ApiArgs};
use activity_api::verify::CaseStatus;
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
    if let Some(c) = &outcome.candidate {
        format!(
            "deployed {name}: {} (version {}){from} as a candidate for {}% of runs; {} stays active",
            c.digest, c.seq, c.ramp_percent, version.digest
        )
    } else if outcome.changed {
        format!(
            "deployed {name}: {} (version {}){from}, rollout {}",
            version.digest,
            version.seq,
            outcome.policy.as_str()
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

/// `verify NAME FILE`: fails (exit status 1) when any case differs or fails.
pub async fn verify(
    config: &Config,
    name: &str,
    file: &Path,
    last: Option<u64>,
    options: &DeployOptions,
    api: &ApiArgs,
) -> anyhow::Result<()> {
    let report = api_client(config, api)
        .verify(file, name, options, last)
        .await?;
    print(api, &report, |r| {
        let mut lines = vec![format!(
            "{name}: candidate {} on {} recorded executions: {} same, {} different, {} failed",
            r.candidate,
            r.cases.len(),
            r.same,
            r.different,
            r.failed
        )];
        for case in r.cases.iter().filter(|c| c.status != CaseStatus::Same) {
            let what = match &case.failure {
                Some(f) => format!("failed: {f}"),
                None => format!(
                    "different: {}",
                    serde_json::to_string(&case.diff).unwrap_or_default()
                ),
            };
            lines.push(format!(
                "  {} input {} {what}",
                case.source,
                serde_json::to_string(&case.input).unwrap_or_default()
            ));
        }
        lines.join("\n")
    });
    if report.different + report.failed > 0 {
        anyhow::bail!(
            "the candidate differs from {} and fails {} of {} recorded executions",
            report.different,
            report.failed,
            report.cases.len()
        );
    }
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
                let candidate = match &d.candidate {
                    Some(c) => format!(
                        "candidate {} (version {}) for {}% of runs\n",
                        c.digest, c.seq, c.ramp_percent
                    ),
                    None => String::new(),
                };
                let events: Vec<String> = d
                    .events
                    .iter()
                    .map(|e| {
                        format!(
                            "  {:<8} at {} by {}{}{}",
                            format!("{:?}", e.kind).to_lowercase(),
                            e.at_ms,
                            e.by,
                            e.ramp_percent
                                .map(|p| format!(" ramp {p}%"))
                                .unwrap_or_default(),
                            e.reason
                                .as_ref()
                                .map(|r| format!(": {r}"))
                                .unwrap_or_default()
                        )
                    })
                    .collect();
                format!(
                    "{name} (rollout {}, {} pins)\n{candidate}{}\nevents, newest first:\n{}",
                    d.policy.as_str(),
                    d.pins,
                    rows.join("\n"),
                    events.join("\n")
                )
            });
        }
        ActivitiesCommand::Rollback { name, digest } => {
            let version = client.rollback(&name, digest.as_deref()).await?;
            print(args, &version, |v| {
                format!("{name} now serves {} (version {})", v.digest, v.seq)
            });
        }
        ActivitiesCommand::Ramp { name, percent } => {
            let details = client.ramp(&name, percent).await?;
            print(args, &details, |_| {
                format!("{name}: the candidate now gets {percent}% of runs")
            });
        }
        ActivitiesCommand::Egress { name, since } => {
            let records = client.egress(&name, since).await?;
            print(args, &records, |records| {
                if records.is_empty() {
                    return format!("no outgoing requests of {name} on this host");
                }
                records
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {} {} {}:{} -> {} {}{} ({} B out, {} B in) run {}",
                            r.at_ms,
                            r.outcome,
                            r.method,
                            r.host,
                            r.port.unwrap_or_default(),
                            r.address.as_deref().unwrap_or("-"),
                            r.status.map(|s| s.to_string()).unwrap_or_default(),
                            r.reason
                                .as_deref()
                                .map(|w| format!(" {w}"))
                                .unwrap_or_default(),
                            r.request_bytes,
                            r.response_bytes,
                            r.workflow_id.as_deref().unwrap_or(&r.activity_id),
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ActivitiesCommand::Promote { name } => {
            let version = client.promote(&name).await?;
            print(args, &version, |v| {
                format!(
                    "{name} now serves {} (version {}) for every run",
                    v.digest, v.seq
                )
            });
        }
        ActivitiesCommand::Abort { name, reason } => {
            let details = client.abort(&name, reason.as_deref()).await?;
            print(args, &details, |_| {
                format!("{name}: candidate aborted; every call goes to the active version")
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
