//! `keys` and `secrets`: API keys and secrets through a host's REST API (admin routes).

use std::io::Read;

use anyhow::Context;

use crate::cli::{api_client, print, ApiArgs, KeysCommand, SecretsCommand};
use crate::config::Config;

/// `keys create|list|revoke`.
pub async fn keys(config: &Config, command: KeysCommand, args: &ApiArgs) -> anyhow::Result<()> {
    let client = api_client(config, args);
    match command {
        KeysCommand::Create {
            name,
            role,
            activities,
            per_minute,
            cpu_ms_per_minute,
            kv_stores,
            secrets,
        } => {
            let body = serde_json::json!({
                "name": name,
                "role": role,
                "activities": activities,
                "per_minute": per_minute,
                "cpu_ms_per_minute": cpu_ms_per_minute,
                "key_value_stores": kv_stores,
                "secrets": secrets,
            });
            let created = client.create_key(&body).await?;
            print(args, &created, |c| {
                format!(
                    "created {} ({}, role {}); its token, shown once:\n{}",
                    c.key.id,
                    c.key.name,
                    c.key.role.as_str(),
                    c.token
                )
            });
        }
        KeysCommand::List => {
            let keys = client.list_keys().await?;
            print(args, &keys, |keys| {
                if keys.is_empty() {
                    return "no API keys".into();
                }
                keys.iter()
                    .map(|k| {
                        let scope = if k.activities.is_empty() {
                            "all activities".to_string()
                        } else {
                            k.activities.join(",")
                        };
                        let state = if k.revoked_at_ms.is_some() {
                            "revoked"
                        } else {
                            "live"
                        };
                        format!(
                            "{} {:<8} {:<8} {} ({scope}), by {}",
                            k.id,
                            k.role.as_str(),
                            state,
                            k.name,
                            k.created_by
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        KeysCommand::Revoke { id } => {
            client.revoke_key(&id).await?;
            print(args, &serde_json::json!({"revoked": id}), |_| {
                format!("revoked {id}")
            });
        }
    }
    Ok(())
}

/// `secrets set|list|remove`.
pub async fn secrets(
    config: &Config,
    command: SecretsCommand,
    args: &ApiArgs,
) -> anyhow::Result<()> {
    let client = api_client(config, args);
    match command {
        SecretsCommand::Set { name, hosts } => {
            let mut value = String::new();
            std::io::stdin()
                .read_to_string(&mut value)
                .context("reading the secret's value from standard input")?;
            let value = value
                .strip_suffix('\n')
                .map(|v| v.strip_suffix('\r').unwrap_or(v))
                .unwrap_or(&value);
            let set = client.set_secret(&name, value, &hosts).await?;
            print(args, &set, |s| {
                format!("set secret {} for {}", s.name, s.hosts.join(", "))
            });
        }
        SecretsCommand::List => {
            let secrets = client.list_secrets().await?;
            print(args, &secrets, |secrets| {
                if secrets.is_empty() {
                    return "no secrets".into();
                }
                secrets
                    .iter()
                    .map(|s| format!("{} -> {} (set by {})", s.name, s.hosts.join(", "), s.set_by))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        SecretsCommand::Remove { name } => {
            client.remove_secret(&name).await?;
            print(args, &serde_json::json!({"removed": name}), |_| {
                format!("removed secret {name}")
            });
        }
    }
    Ok(())
}
