//! What outgoing HTTP may reach, checked after DNS: the host-wide policy that bounds every
//! grant, the address classes a grant must name explicitly (loopback, link-local, private,
//! unique-local, unspecified, ...), the resolver (with overrides), the secrets substituted
//! into requests to their bound hosts, and the audit of every request.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::grants::{Grants, HostPattern};

/// `runtime.egress`: the host-wide bounds of outgoing HTTP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EgressSettings {
    /// Hosts any deploy may grant (patterns as in `allowed_hosts`, addresses and CIDR ranges
    /// too). A deploy granting something outside is refused. Default `["*"]`: any public
    /// host; special addresses still need to be named by the grant *and* covered here.
    pub allowed_hosts: Vec<String>,
    /// Host names answered without DNS: name -> addresses.
    pub resolve: BTreeMap<String, Vec<IpAddr>>,
    /// Outgoing requests remembered per activity type for `GET .../egress`.
    pub audit_kept: usize,
    /// Largest request body a secret is substituted into (the body is read whole).
    pub max_substituted_body_bytes: usize,
}

impl Default for EgressSettings {
    fn default() -> Self {
        Self {
            allowed_hosts: vec!["*".into()],
            resolve: BTreeMap::new(),
            audit_kept: 1000,
            max_substituted_body_bytes: 1 << 20,
        }
    }
}

/// The class of an address a grant must name explicitly, or `None` for a public address.
/// IPv6 forms that carry an IPv4 address (mapped, NAT64's well-known prefix, 6to4) are
/// classed by that address; forms that reach an unknown IPv4 network through a relay or a
/// local translator (Teredo, local-use NAT64, IPv4-compatible) are special themselves.
pub fn special_class(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return special_v4(v4);
            }
            let s = v6.segments();
            let o = v6.octets();
            if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_loopback() {
                Some("loopback")
            } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                // NAT64's well-known prefix: the IPv4 address in its last 32 bits.
                special_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
            } else if s[0] == 0x2002 {
                // 6to4: the IPv4 address after the prefix.
                special_v4(Ipv4Addr::new(o[2], o[3], o[4], o[5]))
            } else if s[..3] == [0x64, 0xff9b, 1] {
                Some("NAT64 (local use)")
            } else if s[..2] == [0x2001, 0] {
                Some("Teredo")
            } else if s[..6] == [0; 6] {
                Some("IPv4-compatible")
            } else if (s[0] & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if (s[0] & 0xffc0) == 0xfec0 {
                Some("site-local")
            } else if (s[0] & 0xfe00) == 0xfc00 {
                Some("unique-local")
            } else if s[..2] == [0x2001, 0xdb8] {
                Some("documentation")
            } else if v6.is_multicast() || s[..4] == [0x100, 0, 0, 0] {
                Some("reserved")
            } else {
                None
            }
        }
    }
}

fn special_v4(v4: Ipv4Addr) -> Option<&'static str> {
    let o = v4.octets();
    if v4.is_unspecified() {
        Some("unspecified")
    } else if v4.is_loopback() {
        Some("loopback")
    } else if v4.is_link_local() {
        Some("link-local")
    } else if v4.is_private() {
        Some("private")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("shared (carrier-grade NAT)")
    } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
        Some("benchmarking")
    } else if o[..3] == [192, 0, 0] {
        Some("protocol assignments")
    } else if o[..3] == [192, 0, 2] || o[..3] == [198, 51, 100] || o[..3] == [203, 0, 113] {
        Some("documentation")
    } else if v4.is_broadcast() || v4.is_multicast() || o[0] == 0 || o[0] >= 240 {
        Some("reserved")
    } else {
        None
    }
}

/// True when one of `grants.allowed_hosts` names `ip` itself or a range holding it (with
/// `port` when the entry has one).
pub fn names_address(grants: &Grants, ip: IpAddr, port: Option<u16>) -> bool {
    grants.allowed_hosts.iter().any(|entry| {
        let pattern = HostPattern::parse(entry);
        let port_ok = pattern.port.is_none() || pattern.port == port;
        port_ok
            && match (
                pattern.host.parse::<IpAddr>(),
                pattern.host.parse::<IpNet>(),
            ) {
                (Ok(a), _) => a == ip,
                (_, Ok(net)) => net.contains(&ip),
                _ => false,
            }
    })
}

/// Why an entry of a deploy's `allowed_hosts` is outside the host-wide policy, if it is.
pub fn outside_policy(policy: &[String], entry: &str) -> Option<String> {
    let grant = HostPattern::parse(entry);
    let covered = policy.iter().any(|p| {
        let bound = HostPattern::parse(p);
        let port_ok = bound.port.is_none() || bound.port == grant.port;
        port_ok && host_covers(bound.host, grant.host)
    });
    (!covered).then(|| {
        format!(
            "allowed host {entry:?} is outside the host's policy (runtime.egress.allowed_hosts: {})",
            policy.join(", ")
        )
    })
}

/// True when the host-wide `bound` covers everything `grant` may reach.
fn host_covers(bound: &str, grant: &str) -> bool {
    let as_net = |s: &str| {
        s.parse::<IpNet>()
            .ok()
            .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
    };
    match (as_net(bound), as_net(grant)) {
        (Some(b), Some(g)) => return b.contains(&g),
        (Some(_), None) => return false,
        (None, Some(g)) => {
            // A name pattern covers addresses only as `*` does, and never special ones.
            return bound == "*" && special_class(g.addr()).is_none();
        }
        (None, None) => {}
    }
    if bound == "*" {
        return true;
    }
    if grant == "*" {
        return false;
    }
    if let Some(suffix) = bound.strip_prefix("*.") {
        let g = grant.strip_prefix("*.").unwrap_or(grant);
        return g.len() > suffix.len()
            && g[g.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            && g.as_bytes()[g.len() - suffix.len() - 1] == b'.';
    }
    bound.eq_ignore_ascii_case(grant)
}

/// Resolves host names to addresses. The system resolver by default; tests and operators
/// can answer names themselves (`runtime.egress.resolve`).
pub trait Resolve: Send + Sync {
    /// The addresses of `host`.
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>>;
}

/// The system resolver, with the overrides of `runtime.egress.resolve` first.
pub struct SystemResolver {
    overrides: BTreeMap<String, Vec<IpAddr>>,
}

impl Resolve for SystemResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        Box::pin(async move {
            let key = host.to_ascii_lowercase();
            if let Some(ips) = self.overrides.get(&key) {
                return Ok(ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect());
            }
            Ok(tokio::net::lookup_host((host, port)).await?.collect())
        })
    }
}

/// Opens the TCP connection of an allowed request (a trait so a test can prove it was never
/// called for a refused one).
pub trait Connect: Send + Sync {
    /// Connects to `addr`.
    fn connect(
        &self,
        addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<tokio::net::TcpStream>> + Send + '_>>;
}

/// Plain TCP.
pub struct TcpConnect;

impl Connect for TcpConnect {
    fn connect(
        &self,
        addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<tokio::net::TcpStream>> + Send + '_>> {
        Box::pin(tokio::net::TcpStream::connect(addr))
    }
}

/// One secret as a host holds it: the value and the hosts it may be sent to.
#[derive(Clone)]
pub struct Secret {
    /// The value.
    pub value: String,
    /// Patterns as in `allowed_hosts`.
    pub hosts: Vec<String>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("value", &"********")
            .field("hosts", &self.hosts)
            .finish()
    }
}

/// One of a secret's host bindings read: whether it lets the value go over plain HTTP
/// (written `http://host`; `https://host` and a bare `host` mean TLS only), and the host
/// pattern.
pub fn secret_binding(binding: &str) -> (bool, &str) {
    let binding = binding.trim();
    if let Some(rest) = binding.strip_prefix("http://") {
        (true, rest)
    } else {
        (false, binding.strip_prefix("https://").unwrap_or(binding))
    }
}

/// The guest-visible stand-in for secret `name`: opaque, the same on every host.
pub fn placeholder(name: &str) -> String {
    let digest = Sha256::digest(format!("activity-host-secret\0{name}").as_bytes());
    format!("ahsecret_{}", &hex::encode(digest)[..32])
}

/// One outgoing request, allowed or refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EgressRecord {
    /// Milliseconds since the Unix epoch it was made.
    pub at_ms: u64,
    /// Activity type.
    pub activity_type: String,
    /// Version (component digest).
    pub version: String,
    /// Workflow id, absent for a standalone activity.
    pub workflow_id: Option<String>,
    /// Run id, absent for a standalone activity.
    pub run_id: Option<String>,
    /// Activity id.
    pub activity_id: String,
    /// HTTP method.
    pub method: String,
    /// Host as the guest named it.
    pub host: String,
    /// Port.
    pub port: Option<u16>,
    /// The address connected to (or refused).
    pub address: Option<String>,
    /// `sent`, `refused` or `failed`.
    pub outcome: String,
    /// Why it was refused or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Response status.
    pub status: Option<u16>,
    /// Request body bytes sent.
    pub request_bytes: u64,
    /// Response body bytes received (as read by the guest).
    pub response_bytes: u64,
    /// Names of the secrets substituted into it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// The metric's `host` label: bounded by the activity's grants (see
    /// [`Grants::host_label`](crate::Grants::host_label)), not by what the guest asks for.
    #[serde(skip)]
    pub(crate) host_label: String,
}

/// Outgoing requests by `activity_type`, `host` (the host when a grant names it, the pattern
/// it matched when a wildcard did, `not-granted` else) and `outcome`.
pub const EGRESS_REQUESTS: &str = "activity_egress_requests_total";

/// The host's egress: settings, resolver, connector, secrets and the audit trail.
pub struct Egress {
    pub(crate) settings: EgressSettings,
    pub(crate) resolver: Arc<dyn Resolve>,
    pub(crate) connector: Arc<dyn Connect>,
    secrets: RwLock<Arc<BTreeMap<String, Secret>>>,
    audit: Mutex<HashMap<String, VecDeque<EgressRecord>>>,
}

impl Default for Egress {
    fn default() -> Self {
        Self::new(EgressSettings::default())
    }
}

impl Egress {
    /// Egress under `settings`, with the system resolver and plain TCP.
    pub fn new(settings: EgressSettings) -> Self {
        Self {
            resolver: Arc::new(SystemResolver {
                overrides: settings
                    .resolve
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .collect(),
            }),
            connector: Arc::new(TcpConnect),
            settings,
            secrets: RwLock::default(),
            audit: Mutex::default(),
        }
    }

    /// The same with another resolver (tests answer names themselves).
    pub fn with_resolver(mut self, resolver: Arc<dyn Resolve>) -> Self {
        self.resolver = resolver;
        self
    }

    /// The same with another connector.
    pub fn with_connector(mut self, connector: Arc<dyn Connect>) -> Self {
        self.connector = connector;
        self
    }

    /// The settings.
    pub fn settings(&self) -> &EgressSettings {
        &self.settings
    }

    /// Checks a deploy's grants against the host-wide policy: the first entry outside it.
    pub fn check_grants(&self, grants: &Grants) -> Result<(), String> {
        match grants
            .allowed_hosts
            .iter()
            .find_map(|e| outside_policy(&self.settings.allowed_hosts, e))
        {
            Some(reason) => Err(reason),
            None => Ok(()),
        }
    }

    /// Replaces the secrets this host holds.
    pub fn set_secrets(&self, secrets: BTreeMap<String, Secret>) {
        if let Ok(mut held) = self.secrets.write() {
            *held = Arc::new(secrets);
        }
    }

    /// The names of the secrets this host holds.
    pub fn secret_names(&self) -> Vec<String> {
        self.secrets().keys().cloned().collect()
    }

    /// The secrets this host holds now.
    pub(crate) fn secrets(&self) -> Arc<BTreeMap<String, Secret>> {
        self.secrets.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// Records one request: the log line, the metric, the recent list.
    pub(crate) fn record(&self, record: EgressRecord) {
        // One line per request; a refused one at `warn`, the only place it is logged.
        macro_rules! audit_line {
            ($level:expr) => {
                tracing::event!(
                    target: "egress",
                    $level,
                    activity = record.activity_type.as_str(),
                    version = record.version.as_str(),
                    workflow_id = record.workflow_id.as_deref(),
                    run_id = record.run_id.as_deref(),
                    activity_id = record.activity_id.as_str(),
                    method = record.method.as_str(),
                    host = record.host.as_str(),
                    port = record.port,
                    address = record.address.as_deref(),
                    outcome = record.outcome.as_str(),
                    reason = record.reason.as_deref(),
                    status = record.status,
                    request_bytes = record.request_bytes,
                    response_bytes = record.response_bytes,
                    secrets = ?record.secrets,
                    "outgoing request"
                )
            };
        }
        if record.outcome == "refused" {
            audit_line!(tracing::Level::WARN);
        } else {
            audit_line!(tracing::Level::INFO);
        }
        metrics::counter!(EGRESS_REQUESTS,
            "activity_type" => record.activity_type.clone(),
            "host" => record.host_label.clone(),
            "outcome" => record.outcome.clone())
        .increment(1);
        if let Ok(mut audit) = self.audit.lock() {
            let kept = audit.entry(record.activity_type.clone()).or_default();
            kept.push_back(record);
            while kept.len() > self.settings.audit_kept.max(1) {
                kept.pop_front();
            }
        }
    }

    /// The requests of `activity_type` made at or after `since_ms`, oldest first.
    pub fn recent(&self, activity_type: &str, since_ms: u64) -> Vec<EgressRecord> {
        self.audit
            .lock()
            .map(|a| {
                a.get(activity_type)
                    .map(|k| k.iter().filter(|r| r.at_ms >= since_ms).cloned().collect())
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_addresses_are_classed() {
        for (ip, class) in [
            ("127.0.0.1", Some("loopback")),
            ("127.8.9.10", Some("loopback")),
            ("::1", Some("loopback")),
            ("169.254.169.254", Some("link-local")),
            ("fd00:ec2::254", Some("unique-local")),
            ("fe80::1", Some("link-local")),
            ("10.1.2.3", Some("private")),
            ("172.16.0.1", Some("private")),
            ("192.168.1.1", Some("private")),
            ("100.64.0.1", Some("shared (carrier-grade NAT)")),
            ("0.0.0.0", Some("unspecified")),
            ("::", Some("unspecified")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:169.254.169.254", Some("link-local")),
            ("255.255.255.255", Some("reserved")),
            // IPv6 forms carrying an IPv4 address are classed by it.
            ("64:ff9b::7f00:1", Some("loopback")),
            ("64:ff9b::a9fe:a9fe", Some("link-local")),
            ("64:ff9b::5db8:d70e", None),
            ("2002:7f00:1::1", Some("loopback")),
            ("2002:a00:1::", Some("private")),
            ("2002:5db8:d70e::1", None),
            // Forms that reach an IPv4 network the host cannot see are special themselves.
            ("64:ff9b:1::a00:1", Some("NAT64 (local use)")),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Some("Teredo")),
            ("::127.0.0.1", Some("IPv4-compatible")),
            ("::8.8.8.8", Some("IPv4-compatible")),
            ("fec0::1", Some("site-local")),
            ("2001:db8::1", Some("documentation")),
            ("100::1", Some("reserved")),
            ("198.18.0.1", Some("benchmarking")),
            ("198.19.255.254", Some("benchmarking")),
            ("192.0.0.8", Some("protocol assignments")),
            ("192.0.2.1", Some("documentation")),
            ("93.184.215.14", None),
            ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", None),
        ] {
            assert_eq!(special_class(ip.parse().unwrap()), class, "{ip}");
        }
    }

    #[test]
    fn a_grant_names_an_address_by_itself_or_its_range() {
        let g = Grants::hosts(&[
            "127.0.0.1:8080",
            "10.0.0.0/8",
            "[::1]:9000",
            "*",
            "*.example.com",
        ]);
        assert!(names_address(&g, "127.0.0.1".parse().unwrap(), Some(8080)));
        assert!(!names_address(&g, "127.0.0.1".parse().unwrap(), Some(8081)));
        assert!(names_address(&g, "10.9.8.7".parse().unwrap(), Some(1)));
        assert!(names_address(&g, "::1".parse().unwrap(), Some(9000)));
        assert!(!names_address(
            &g,
            "169.254.169.254".parse().unwrap(),
            Some(80)
        ));
        assert!(!names_address(
            &Grants::hosts(&["*"]),
            "127.0.0.1".parse().unwrap(),
            Some(80)
        ));
    }

    #[test]
    fn the_host_policy_bounds_grants() {
        let policy: Vec<String> = ["*.example.com", "api.partner.io:443", "10.1.0.0/16"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for (entry, inside) in [
            ("hooks.example.com", true),
            ("*.hooks.example.com", true),
            ("example.com", false),
            ("api.partner.io:443", true),
            ("api.partner.io", false),
            ("api.partner.io:8443", false),
            ("10.1.2.3", true),
            ("10.1.0.0/24", true),
            ("10.2.0.1", false),
            ("*", false),
        ] {
            assert_eq!(outside_policy(&policy, entry).is_none(), inside, "{entry}");
        }
        let open = vec!["*".to_string()];
        assert!(outside_policy(&open, "anything.io").is_none());
        assert!(outside_policy(&open, "93.184.215.14").is_none());
        // `*` does not cover special addresses: the policy must name them.
        assert!(outside_policy(&open, "127.0.0.1:8080").is_some());
        assert!(outside_policy(&open, "169.254.169.254").is_some());
        let lo = vec!["*".to_string(), "127.0.0.0/8".to_string()];
        assert!(outside_policy(&lo, "127.0.0.1:8080").is_none());
    }

    #[test]
    fn placeholders_are_opaque_and_stable() {
        let p = placeholder("WEBHOOK_TOKEN");
        assert_eq!(p, placeholder("WEBHOOK_TOKEN"));
        assert_ne!(p, placeholder("OTHER"));
        assert!(!p.contains("WEBHOOK"));
    }
}
