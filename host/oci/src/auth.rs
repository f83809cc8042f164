//! Which credentials a registry gets, and whether it is spoken to over plain HTTP.
//!
//! Order: credentials given to the client (the CLI's `--username`), then the registry's entry
//! under `oci.registries`, then the Docker config file (with its credential helpers), then
//! none (anonymous).

use std::net::IpAddr;
use std::path::PathBuf;

use docker_credential::{CredentialRetrievalError, DockerCredential};
use oci_client::secrets::RegistryAuth;

use crate::{OciError, OciSettings};

/// Where a registry's credentials came from (named in errors, never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// Given on the command line.
    CommandLine,
    /// `oci.registries.<registry>` in the configuration.
    Config,
    /// The Docker config file (or one of its credential helpers).
    DockerConfig(PathBuf),
    /// No credentials: anonymous access.
    Anonymous,
}

impl std::fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::CommandLine => f.write_str("credentials from the command line"),
            Self::Config => f.write_str("credentials from oci.registries in the configuration"),
            Self::DockerConfig(p) => write!(f, "credentials from {}", p.display()),
            Self::Anonymous => f.write_str("anonymous"),
        }
    }
}

/// Credentials for one registry.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// What is sent.
    pub auth: RegistryAuth,
    /// Where it came from.
    pub source: CredentialSource,
}

impl Credentials {
    /// Basic credentials given on the command line.
    pub fn basic(username: String, password: String) -> Self {
        Self {
            auth: RegistryAuth::Basic(username, password),
            source: CredentialSource::CommandLine,
        }
    }

    fn anonymous() -> Self {
        Self {
            auth: RegistryAuth::Anonymous,
            source: CredentialSource::Anonymous,
        }
    }
}

/// `localhost`, `127.0.0.0/8` or `::1`, with or without a port.
pub(crate) fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => registry.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn docker_config_path() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
        .map(|dir| dir.join("config.json"))
}

/// The credentials `registry` gets from the settings and the Docker config.
pub(crate) fn resolve(settings: &OciSettings, registry: &str) -> Result<Credentials, OciError> {
    if let Some(r) = settings.registries.get(registry) {
        if let Some(token) = &r.token {
            return Ok(Credentials {
                auth: RegistryAuth::Bearer(token.clone()),
                source: CredentialSource::Config,
            });
        }
        if let Some(username) = &r.username {
            let password = match (&r.password, &r.password_file) {
                (Some(p), _) => p.clone(),
                (None, Some(file)) => std::fs::read_to_string(file)
                    .map(|p| p.trim_end_matches(['\r', '\n']).to_string())
                    .map_err(|e| OciError::Unauthorized {
                        registry: registry.into(),
                        source_: CredentialSource::Config,
                        message: format!("cannot read password_file {file}: {e}"),
                    })?,
                (None, None) => String::new(),
            };
            return Ok(Credentials {
                auth: RegistryAuth::Basic(username.clone(), password),
                source: CredentialSource::Config,
            });
        }
    }
    if !settings.docker_config {
        return Ok(Credentials::anonymous());
    }
    let Some(path) = docker_config_path().filter(|p| p.is_file()) else {
        return Ok(Credentials::anonymous());
    };
    let source = CredentialSource::DockerConfig(path);
    match docker_credential::get_credential(registry) {
        Ok(DockerCredential::UsernamePassword(u, p)) => Ok(Credentials {
            auth: RegistryAuth::Basic(u, p),
            source,
        }),
        Ok(DockerCredential::IdentityToken(t)) => Ok(Credentials {
            auth: RegistryAuth::Bearer(t),
            source,
        }),
        Err(CredentialRetrievalError::NoCredentialConfigured) => Ok(Credentials::anonymous()),
        Err(e) => Err(OciError::Unauthorized {
            registry: registry.into(),
            source_: source,
            message: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_recognized() {
        for r in [
            "localhost:5000",
            "LOCALHOST",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in [
            "ghcr.io",
            "10.0.0.1:5000",
            "localhost.example.com",
            "[fd00::1]:5000",
        ] {
            assert!(!is_loopback(r), "{r}");
        }
    }
}
