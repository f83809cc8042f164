//! Capability grants per activity, and the import policy that checks a component's imports
//! against what the host offers and what the activity was granted.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::limits::ActivityLimits;

/// What an activity is allowed beyond computing: deny by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Grants {
    /// Hosts the activity may call over outgoing HTTP: `example.com`, `example.com:8443`,
    /// `*.example.com`, or `*` for any host. Empty means no outgoing HTTP.
    pub allowed_hosts: Vec<String>,
    /// Key-value stores (`wasi:keyvalue/store.open` identifiers) the activity may open.
    pub key_value_stores: Vec<String>,
    /// Values the activity reads through `wasi:config/store`.
    pub config: BTreeMap<String, String>,
    /// Secrets (set through `/api/v1/secrets`) the activity may use: the guest reads an
    /// opaque placeholder under the secret's name through `wasi:config/store`, and the host
    /// puts the value in its place only in requests to the secret's hosts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
}

impl Grants {
    /// Grants of only these host patterns (the tests' shorthand).
    #[cfg(test)]
    pub(crate) fn hosts(list: &[&str]) -> Self {
        Self {
            allowed_hosts: list.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    /// What metrics call a request's host: the host when a grant names it, the pattern it
    /// matched when a wildcard did (`*.example.com`, `*`), [`NOT_GRANTED`] when none did. So
    /// the label's values are bounded by the grants, whatever hosts a guest tries.
    pub fn host_label(&self, host: &str, port: Option<u16>) -> String {
        let matched = self
            .allowed_hosts
            .iter()
            .find(|pattern| HostPattern::parse(pattern).matches(host, port));
        match matched {
            Some(pattern) if pattern.contains('*') => pattern.trim().to_string(),
            Some(_) => host.trim_matches(['[', ']']).to_ascii_lowercase(),
            None => NOT_GRANTED.to_string(),
        }
    }

    /// True when `authority` (`host` or `host:port`) matches an allowed host pattern.
    pub fn allows_host(&self, host: &str, port: Option<u16>) -> bool {
        self.allowed_hosts
            .iter()
            .any(|pattern| HostPattern::parse(pattern).matches(host, port))
    }
}

/// The metric label of a request to a host no grant names.
pub const NOT_GRANTED: &str = "not-granted";

/// One entry of an outgoing-HTTP allowlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostPattern<'a> {
    pub(crate) host: &'a str,
    pub(crate) port: Option<u16>,
}

impl<'a> HostPattern<'a> {
    pub(crate) fn parse(pattern: &'a str) -> Self {
        let pattern = pattern.trim();
        // `[::1]:8080` and `host:port`; a bare IPv6 address has several colons and no port.
        match pattern.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') || host.ends_with(']') => {
                match port.parse() {
                    Ok(p) => Self {
                        host: host.trim_matches(['[', ']']),
                        port: Some(p),
                    },
                    Err(_) => Self {
                        host: pattern,
                        port: None,
                    },
                }
            }
            _ => Self {
                host: pattern.trim_matches(['[', ']']),
                port: None,
            },
        }
    }

    pub(crate) fn matches(&self, host: &str, port: Option<u16>) -> bool {
        let host = host.trim_matches(['[', ']']);
        let host_ok = if self.host == "*" {
            true
        } else if let Some(suffix) = self.host.strip_prefix("*.") {
            host.len() > suffix.len() + 1
                && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
        } else {
            self.host.eq_ignore_ascii_case(host)
        };
        host_ok && (self.port.is_none() || self.port == port)
    }
}

/// A capability the host offers to guests, named the way grants and errors name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Clocks, random numbers, streams, an empty environment and no preopened files.
    Base,
    /// `wasi:logging`, into the host's structured log.
    Logging,
    /// `activity-host:activity`: activity info, heartbeats, cancellation, failures.
    ActivityContext,
    /// `wasi:config/store`: the activity's configured values.
    Config,
    /// `wasi:keyvalue/store`: the stores named in `key_value_stores`.
    KeyValue,
    /// `wasi:http/outgoing-handler`: calls to the hosts in `allowed_hosts`.
    OutgoingHttp,
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Capability::Base => "base WASI",
            Capability::Logging => "logging",
            Capability::ActivityContext => "activity context",
            Capability::Config => "config",
            Capability::KeyValue => "key-value (grant key_value_stores)",
            Capability::OutgoingHttp => "outgoing HTTP (grant allowed_hosts)",
        })
    }
}

/// Why an import cannot be satisfied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportRefusal {
    /// The host has no such interface at all.
    NotOffered {
        /// What to do instead, when there is a known alternative.
        hint: Option<&'static str>,
    },
    /// The host offers it but this activity was not granted it.
    NotGranted(Capability),
}

/// Decides whether a component import (`wasi:http/outgoing-handler@0.2.3`) is allowed.
pub fn check_import(import: &str, grants: &Grants) -> Result<Capability, ImportRefusal> {
    let unversioned = import.split_once('@').map_or(import, |(name, _)| name);
    let mut offered = crate::capabilities::OFFERED.iter().copied().flatten();
    let Some(&(_, capability)) = offered.find(|(name, _)| *name == unversioned) else {
        let hint = if unversioned.starts_with("wasi:keyvalue/") {
            Some("only wasi:keyvalue/store is offered")
        } else {
            None
        };
        return Err(ImportRefusal::NotOffered { hint });
    };
    let granted = match capability {
        Capability::KeyValue => !grants.key_value_stores.is_empty(),
        Capability::OutgoingHttp => !grants.allowed_hosts.is_empty(),
        _ => true,
    };
    if granted {
        Ok(capability)
    } else {
        Err(ImportRefusal::NotGranted(capability))
    }
}

/// What any deploy on this host may grant beyond outgoing hosts (`runtime.policy`; hosts
/// are bounded by `runtime.egress.allowed_hosts`): key-value stores and secrets, as names,
/// `prefix*` or `*`, and the longest time limit. Checked at deploy, and again when a host
/// loads a stored version, so a policy tightened at a restart stops serving what it no
/// longer allows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrantPolicy {
    /// Key-value stores a deploy may grant.
    pub key_value_stores: Vec<String>,
    /// Secrets a deploy may grant.
    pub secrets: Vec<String>,
    /// The longest `max_execution_ms` a deploy may set; `None`: any.
    pub max_execution_ms: Option<u64>,
}

impl Default for GrantPolicy {
    fn default() -> Self {
        Self {
            key_value_stores: vec!["*".into()],
            secrets: vec!["*".into()],
            max_execution_ms: None,
        }
    }
}

/// True when policy pattern `allowed` covers granted name `granted` (itself `*` for every
/// store): `*` covers everything, `prefix*` the names (and the `prefix...*` grants) under
/// it, a name itself.
fn covers(allowed: &str, granted: &str) -> bool {
    match allowed.strip_suffix('*') {
        Some(prefix) => granted
            .strip_suffix('*')
            .unwrap_or(granted)
            .starts_with(prefix),
        None => allowed == granted,
    }
}

impl GrantPolicy {
    /// Why `grants` and `limits` are outside this policy, if they are; `whose` names the
    /// policy in the answer (`this host's policy, runtime.policy`, a key's grants).
    pub fn check(
        &self,
        grants: &Grants,
        limits: &ActivityLimits,
        whose: &str,
    ) -> Result<(), String> {
        let outside = |what: &str, list: &[String], allowed: &[String], key: &str| {
            list.iter()
                .find(|g| !allowed.iter().any(|a| covers(a, g)))
                .map(|g| {
                    format!(
                        "{what} {g:?} is outside {whose} ({key}: {})",
                        if allowed.is_empty() {
                            "none".to_string()
                        } else {
                            allowed.join(", ")
                        }
                    )
                })
        };
        if let Some(why) = outside(
            "key-value store",
            &grants.key_value_stores,
            &self.key_value_stores,
            "key_value_stores",
        )
        .or_else(|| outside("secret", &grants.secrets, &self.secrets, "secrets"))
        {
            return Err(why);
        }
        match self.max_execution_ms {
            Some(most) if limits.max_execution_ms > most => Err(format!(
                "max_execution_ms {} is over {whose} (max_execution_ms: {most})",
                limits.max_execution_ms
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns_match_exactly_by_port_and_by_suffix() {
        let g = Grants::hosts(&[
            "api.example.com",
            "127.0.0.1:8080",
            "*.hooks.io",
            "[::1]:9000",
        ]);
        assert!(g.allows_host("api.example.com", Some(443)));
        assert!(g.allows_host("API.example.com", None));
        assert!(!g.allows_host("example.com", Some(443)));
        assert!(g.allows_host("127.0.0.1", Some(8080)));
        assert!(!g.allows_host("127.0.0.1", Some(8081)));
        assert!(g.allows_host("a.hooks.io", Some(80)));
        assert!(!g.allows_host("hooks.io", Some(80)));
        assert!(!g.allows_host("evilhooks.io", Some(80)));
        assert!(g.allows_host("::1", Some(9000)));
        assert!(Grants::hosts(&["*"]).allows_host("anything", Some(1)));
        assert!(!Grants::default().allows_host("anything", None));
    }

    #[test]
    fn imports_need_their_grants() {
        let none = Grants::default();
        assert_eq!(
            check_import("wasi:io/streams@0.2.3", &none),
            Ok(Capability::Base)
        );
        assert_eq!(
            check_import("wasi:http/outgoing-handler@0.2.0", &none),
            Err(ImportRefusal::NotGranted(Capability::OutgoingHttp))
        );
        assert_eq!(
            check_import("wasi:keyvalue/store@0.2.0-draft", &none),
            Err(ImportRefusal::NotGranted(Capability::KeyValue))
        );
        // Linked but inert.
        assert_eq!(
            check_import("wasi:sockets/tcp@0.2.0", &none),
            Ok(Capability::Base)
        );
        assert!(matches!(
            check_import("wasi:keyvalue/atomics@0.2.0-draft", &none),
            Err(ImportRefusal::NotOffered { hint: Some(_) })
        ));
        assert!(matches!(
            check_import("acme:secret/door", &none),
            Err(ImportRefusal::NotOffered { hint: None })
        ));
        assert!(check_import("wasi:http/outgoing-handler@0.2.0", &Grants::hosts(&["x"])).is_ok());
    }

    #[test]
    fn the_host_label_is_bounded_by_the_grants() {
        let grants = Grants::hosts(&["api.example.com", "*.hooks.example.com", "10.0.0.1:8080"]);
        assert_eq!(
            grants.host_label("API.example.com", Some(443)),
            "api.example.com"
        );
        assert_eq!(
            grants.host_label("a1.hooks.example.com", Some(443)),
            "*.hooks.example.com"
        );
        assert_eq!(grants.host_label("10.0.0.1", Some(8080)), "10.0.0.1");
        // Whatever a guest tries beyond its grants is one value.
        for tried in ["evil.example.net", "x.api.example.com", "10.0.0.1"] {
            assert_eq!(grants.host_label(tried, Some(9999)), NOT_GRANTED, "{tried}");
        }
        let everything = Grants::hosts(&["*"]);
        for i in 0..100 {
            assert_eq!(
                everything.host_label(&format!("h{i}.example.org"), Some(443)),
                "*"
            );
        }
    }

    #[test]
    fn the_policy_bounds_stores_secrets_and_time() {
        const HOST: &str = "this host's policy, runtime.policy";
        let policy = GrantPolicy {
            key_value_stores: vec!["orders-*".into(), "audit".into()],
            secrets: vec!["orders_token".into()],
            max_execution_ms: Some(10_000),
        };
        let limits = ActivityLimits::default();
        let grants = |stores: &[&str], secrets: &[&str]| Grants {
            key_value_stores: stores.iter().map(|s| s.to_string()).collect(),
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let short = ActivityLimits {
            max_execution_ms: 5_000,
            ..limits
        };
        assert!(policy
            .check(
                &grants(&["orders-eu", "audit"], &["orders_token"]),
                &short,
                HOST
            )
            .is_ok());
        for (g, what) in [
            (grants(&["users"], &[]), "\"users\""),
            (grants(&["*"], &[]), "\"*\""),
            (grants(&["orders-*"], &["webhook_token"]), "webhook_token"),
        ] {
            let why = policy.check(&g, &short, HOST).unwrap_err();
            assert!(why.contains(what), "{why}");
        }
        assert!(grants(&["orders-*"], &[]).key_value_stores.len() == 1);
        assert!(policy
            .check(&grants(&["orders-*"], &[]), &short, HOST)
            .is_ok());
        assert!(policy
            .check(&grants(&[], &[]), &limits, HOST)
            .unwrap_err()
            .contains("max_execution_ms"));
        assert!(GrantPolicy::default()
            .check(&grants(&["*"], &["any"]), &limits, HOST)
            .is_ok());
    }
}
