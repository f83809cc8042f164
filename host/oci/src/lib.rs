//! Activity components in OCI registries, as Wasm OCI artifacts (the CNCF layout: one
//! `application/wasm` layer, a `application/vnd.wasm.config.v0+json` config).
//!
//! [`OciClient::push`] uploads a component and returns the manifest digest;
//! [`OciClient::pull`] fetches one by tag or digest and checks it: the manifest's own digest
//! when the reference pins one, exactly one Wasm layer, its size against a limit before the
//! download, its bytes against the layer digest. The distribution protocol itself is the
//! `oci-client` crate's; credentials come from [`OciSettings`] and the Docker config file
//! (`docker_credential`, which also runs credential helpers).

mod artifact;
mod auth;
mod capped;

use std::collections::BTreeMap;
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{DigestError, OciDistributionError};
use oci_client::manifest::OciImageManifest;
use oci_client::{Client, Reference, RegistryOperation};
use serde::{Deserialize, Serialize};

pub use artifact::{
    pack, sha256_digest, summarize, ComponentSummary, WasmConfig, CONFIG_MEDIA_TYPE,
    LAYER_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, TITLE_ANNOTATION,
};
pub use auth::{CredentialSource, Credentials};

/// The scheme of a deploy source that names an OCI artifact.
pub const SCHEME: &str = "oci://";

/// Why a push or pull failed. Nothing is deployed when a pull fails.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The reference does not parse.
    #[error("invalid OCI reference {reference:?}: {message}")]
    InvalidReference {
        /// What was given.
        reference: String,
        /// Why it does not parse.
        message: String,
    },
    /// The registry does not answer (refused, unresolvable, timed out).
    #[error("the OCI registry {registry} does not answer: {message}")]
    Unreachable {
        /// The registry's host (and port).
        registry: String,
        /// The transport's error.
        message: String,
    },
    /// The registry refused the credentials (or their absence).
    #[error("the OCI registry {registry} refused the credentials ({source_}): {message}")]
    Unauthorized {
        /// The registry.
        registry: String,
        /// Where the credentials came from.
        source_: CredentialSource,
        /// The registry's answer.
        message: String,
    },
    /// No such repository, tag or digest.
    #[error("{reference} is not in the registry: {message}")]
    NotFound {
        /// The reference.
        reference: String,
        /// The registry's answer.
        message: String,
    },
    /// Content that does not hash to its digest: a tampered or corrupt blob or manifest,
    /// or a manifest other than the one the reference pins.
    #[error("digest mismatch: {0}")]
    DigestMismatch(String),
    /// The artifact is not a Wasm artifact (layers or media types).
    #[error("not a Wasm OCI artifact: {0}")]
    NotWasm(String),
    /// The file is not a component.
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    /// The layer is larger than the limit.
    #[error("the artifact's component is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// Declared size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Anything else the registry answered.
    #[error("the OCI registry {registry} failed: {message}")]
    Registry {
        /// The registry.
        registry: String,
        /// Its answer.
        message: String,
    },
    /// A document that does not serialize or parse.
    #[error("invalid OCI document: {0}")]
    Invalid(String),
}

/// `oci:` configuration section: registries' credentials and transport.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OciSettings {
    /// Read credentials from the Docker config file (`$DOCKER_CONFIG/config.json`, else
    /// `~/.docker/config.json`), credential helpers included, for registries not listed
    /// under `registries`.
    pub docker_config: bool,
    /// Per registry (`host` or `host:port`, as in references): credentials and transport.
    pub registries: BTreeMap<String, RegistrySettings>,
    /// Time limit of one registry request (connect and each read), in milliseconds.
    pub timeout_ms: u64,
}

impl Default for OciSettings {
    fn default() -> Self {
        Self {
            docker_config: true,
            registries: BTreeMap::new(),
            timeout_ms: 30_000,
        }
    }
}

/// One registry's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrySettings {
    /// User name for basic authentication (with `password` or `password_file`).
    pub username: Option<String>,
    /// Password (or access token used as a password).
    pub password: Option<String>,
    /// A file holding the password (a mounted secret), read at each use.
    pub password_file: Option<String>,
    /// A bearer token, sent as is.
    pub token: Option<String>,
    /// Plain HTTP instead of HTTPS. Unset: HTTP for loopback registries (`localhost`,
    /// `127.0.0.0/8`, `::1`), as Docker does, HTTPS for every other.
    pub insecure: Option<bool>,
}

impl OciSettings {
    /// The settings with every secret replaced by `********`, for display.
    pub fn masked(&self) -> Self {
        let mask = |s: &Option<String>| s.as_ref().map(|_| "********".to_string());
        let mut shown = self.clone();
        for r in shown.registries.values_mut() {
            r.password = mask(&r.password);
            r.token = mask(&r.token);
        }
        shown
    }
}

/// A parsed `oci://` source or bare reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRef {
    reference: Reference,
}

impl ArtifactRef {
    /// Parses `oci://REF` or `REF` (`registry/repository:tag`, `...@sha256:...`).
    pub fn parse(text: &str) -> Result<Self, OciError> {
        let bare = text.strip_prefix(SCHEME).unwrap_or(text);
        let invalid = |message: String| OciError::InvalidReference {
            reference: text.to_string(),
            message,
        };
        if bare.is_empty() {
            return Err(invalid("empty reference".into()));
        }
        let reference: Reference = bare.parse().map_err(|e| invalid(format!("{e}")))?;
        Ok(Self { reference })
    }

    /// The registry host (and port).
    pub fn registry(&self) -> &str {
        self.reference.resolve_registry()
    }

    /// The digest the reference pins, if any.
    pub fn digest(&self) -> Option<&str> {
        self.reference.digest()
    }

    /// The full reference (`registry/repository:tag[@digest]`).
    pub fn whole(&self) -> String {
        self.reference.whole()
    }

    /// The same repository pinned to `digest`.
    pub fn pinned(&self, digest: &str) -> String {
        format!(
            "{}/{}@{digest}",
            self.reference.registry(),
            self.reference.repository()
        )
    }

    /// The last path segment of the repository (a default file name).
    pub fn short_name(&self) -> &str {
        self.reference
            .repository()
            .rsplit('/')
            .next()
            .unwrap_or("component")
    }
}

impl std::fmt::Display for ArtifactRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{SCHEME}{}", self.whole())
    }
}

/// A pulled, checked component.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The component's bytes (their sha256 is `layer_digest`).
    pub bytes: Vec<u8>,
    /// The manifest digest: what `REF@digest` pins.
    pub manifest_digest: String,
    /// The layer digest.
    pub layer_digest: String,
}

/// What a push produced.
#[derive(Debug, Clone, Serialize)]
pub struct Pushed {
    /// The reference pushed to.
    pub reference: String,
    /// The manifest digest.
    pub digest: String,
    /// `registry/repository@digest`.
    pub pinned: String,
    /// The component (layer) digest.
    pub layer_digest: String,
    /// The component's size.
    pub size: u64,
}

/// Installs ring as the process's rustls provider (idempotent). The workspace's reqwest is
/// built without a provider of its own (oci-client's `rustls-tls-no-provider`: ring is the
/// provider this workspace already compiles, where reqwest's default would add aws-lc), so
/// every process calls this before it builds an HTTP client: the binary at start, the tests
/// through their support module.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Pushes and pulls Wasm artifacts with the configured credentials.
#[derive(Debug, Clone)]
pub struct OciClient {
    settings: OciSettings,
    /// Plain HTTP for every registry (the CLI's `--insecure`).
    insecure: bool,
    /// Credentials given on the command line, before any configured ones.
    explicit: Option<Credentials>,
}

impl OciClient {
    /// A client with `settings`.
    pub fn new(settings: OciSettings) -> Self {
        install_crypto_provider();
        Self {
            settings,
            insecure: false,
            explicit: None,
        }
    }

    /// Plain HTTP for every registry this client talks to.
    pub fn insecure(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }

    /// Credentials that take precedence over the configured and Docker ones.
    pub fn with_credentials(mut self, credentials: Option<Credentials>) -> Self {
        self.explicit = credentials;
        self
    }

    fn client_for(&self, registry: &str) -> Client {
        let plain = self.insecure
            || self
                .settings
                .registries
                .get(registry)
                .and_then(|r| r.insecure)
                .unwrap_or_else(|| auth::is_loopback(registry));
        let timeout = Duration::from_millis(self.settings.timeout_ms.max(1));
        Client::new(ClientConfig {
            protocol: if plain {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            connect_timeout: Some(timeout),
            read_timeout: Some(timeout),
            // One layer, uploaded whole: registries that do not implement chunked uploads
            // take it too.
            use_monolithic_push: true,
            ..Default::default()
        })
    }

    fn credentials(&self, registry: &str) -> Result<Credentials, OciError> {
        match &self.explicit {
            Some(c) => Ok(c.clone()),
            None => auth::resolve(&self.settings, registry),
        }
    }

    /// Pushes `bytes` (a component) to `reference`; `title` names the layer's file.
    pub async fn push(
        &self,
        reference: &ArtifactRef,
        bytes: Vec<u8>,
        title: &str,
        annotations: BTreeMap<String, String>,
    ) -> Result<Pushed, OciError> {
        let size = bytes.len() as u64;
        let packed = pack(bytes, title, None, annotations)?;
        let registry = reference.registry().to_string();
        let credentials = self.credentials(&registry)?;
        let client = self.client_for(&registry);
        let image = &reference.reference;
        let fail = |e: OciDistributionError| classify(e, &registry, image, &credentials);
        client
            .auth(image, &credentials.auth, RegistryOperation::Push)
            .await
            .map_err(fail)?;
        client
            .push_blob(image, packed.layer.data.clone(), &packed.layer_digest)
            .await
            .map_err(fail)?;
        client
            .push_blob(image, packed.config.data.clone(), &packed.config_digest)
            .await
            .map_err(fail)?;
        let digest = sha256_digest(&packed.manifest);
        client
            .push_manifest_raw(
                image,
                packed.manifest,
                MANIFEST_MEDIA_TYPE.parse().expect("a valid header value"),
            )
            .await
            .map_err(fail)?;
        tracing::info!(reference = %reference.whole(), %digest, "pushed");
        Ok(Pushed {
            reference: reference.whole(),
            pinned: reference.pinned(&digest),
            digest,
            layer_digest: packed.layer_digest,
            size,
        })
    }

    /// Pulls the component `reference` names and checks it (see the crate docs). A layer
    /// over `max_bytes` is refused before it is downloaded.
    pub async fn pull(&self, reference: &ArtifactRef, max_bytes: u64) -> Result<Pulled, OciError> {
        let registry = reference.registry().to_string();
        let credentials = self.credentials(&registry)?;
        let client = self.client_for(&registry);
        let image = &reference.reference;
        let fail = |e: OciDistributionError| classify(e, &registry, image, &credentials);
        let (raw, _) = client
            .pull_manifest_raw(
                image,
                &credentials.auth,
                &[
                    MANIFEST_MEDIA_TYPE,
                    "application/vnd.docker.distribution.manifest.v2+json",
                ],
            )
            .await
            .map_err(fail)?;
        let manifest_digest = sha256_digest(&raw);
        if let Some(pinned) = reference.digest() {
            if pinned != manifest_digest {
                return Err(OciError::DigestMismatch(format!(
                    "the reference pins {pinned} but the registry returned a manifest hashing to {manifest_digest}"
                )));
            }
        }
        let manifest: OciImageManifest = serde_json::from_slice(&raw).map_err(|e| {
            OciError::NotWasm(format!("its manifest is not an image manifest: {e}"))
        })?;
        let layer = artifact::wasm_layer(&manifest)?.clone();
        let size = u64::try_from(layer.size).unwrap_or(0);
        if size > max_bytes {
            return Err(OciError::TooLarge {
                size,
                limit: max_bytes,
            });
        }
        // pull_blob checks the bytes against the descriptor's digest as they stream; the
        // sink stops a registry that sends more than the descriptor declares at that size.
        let mut sink = capped::Capped::new(size);
        let pulled = client.pull_blob(image, &layer, &mut sink).await;
        if sink.overflowed {
            return Err(OciError::DigestMismatch(format!(
                "the registry sent more than the {size} bytes the layer's descriptor declares"
            )));
        }
        pulled.map_err(fail)?;
        let bytes = sink.bytes;
        let layer_digest = sha256_digest(&bytes);
        if layer_digest != layer.digest {
            return Err(OciError::DigestMismatch(format!(
                "the layer should hash to {} but hashes to {layer_digest}",
                layer.digest
            )));
        }
        tracing::info!(reference = %reference.whole(), digest = %manifest_digest, size = bytes.len(), "pulled");
        Ok(Pulled {
            bytes,
            manifest_digest,
            layer_digest,
        })
    }
}

/// Sorts oci-client's errors into the kinds callers act on.
fn classify(
    e: OciDistributionError,
    registry: &str,
    image: &Reference,
    credentials: &Credentials,
) -> OciError {
    let registry = registry.to_string();
    let unauthorized = |message: String| OciError::Unauthorized {
        registry: registry.clone(),
        source_: credentials.source.clone(),
        message,
    };
    let not_found = |message: String| OciError::NotFound {
        reference: image.whole(),
        message,
    };
    match e {
        OciDistributionError::DigestError(DigestError::VerificationError { expected, actual }) => {
            OciError::DigestMismatch(format!(
                "a blob should hash to {expected} but hashes to {actual}"
            ))
        }
        OciDistributionError::UnauthorizedError { url } => unauthorized(format!("401 at {url}")),
        OciDistributionError::AuthenticationFailure(m) => unauthorized(m),
        OciDistributionError::ImageManifestNotFoundError(m) => not_found(m),
        OciDistributionError::RequestError(e) if e.is_connect() || e.is_timeout() => {
            OciError::Unreachable {
                registry,
                message: error_chain(&e),
            }
        }
        OciDistributionError::ServerError { code, url, message } => match (code, clip(&message)) {
            (401 | 403, message) => unauthorized(format!("{code} at {url}: {message}")),
            (404, message) => not_found(message),
            (_, message) => OciError::Registry {
                registry,
                message: format!("{code} at {url}: {message}"),
            },
        },
        OciDistributionError::RegistryError { envelope, url } => {
            let codes: Vec<String> = envelope
                .errors
                .iter()
                .map(|e| format!("{:?}: {}", e.code, clip(&e.message)))
                .collect();
            let text = format!("{} at {url}", codes.join("; "));
            let has = |needle: &str| codes.iter().any(|c| c.to_uppercase().contains(needle));
            if has("UNAUTHORIZED") || has("DENIED") {
                unauthorized(text)
            } else if has("UNKNOWN") {
                not_found(text)
            } else {
                OciError::Registry {
                    registry,
                    message: text,
                }
            }
        }
        other => OciError::Registry {
            registry,
            message: error_chain(&other),
        },
    }
}

/// Most characters of a registry's own words passed on to a caller.
const ECHO_CHARS: usize = 200;

/// A registry's message as a caller may see it: printable characters only, at most
/// [`ECHO_CHARS`] of them (a registry's error body is its own, not ours to relay whole).
fn clip(message: &str) -> String {
    let mut out: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(ECHO_CHARS)
        .collect();
    if message.chars().count() > ECHO_CHARS {
        out.push_str(" [...]");
    }
    out
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let line = s.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_with_or_without_the_scheme() {
        let r = ArtifactRef::parse("oci://localhost:5000/team/validate-user:1.2.0").unwrap();
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.whole(), "localhost:5000/team/validate-user:1.2.0");
        assert_eq!(r.short_name(), "validate-user");
        assert_eq!(r.digest(), None);
        assert_eq!(
            r.pinned("sha256:ab"),
            "localhost:5000/team/validate-user@sha256:ab"
        );
        let d = format!("sha256:{}", "a".repeat(64));
        let pinned = ArtifactRef::parse(&format!("ghcr.io/x/y@{d}")).unwrap();
        assert_eq!(pinned.digest(), Some(d.as_str()));
        for bad in ["", "oci://", "UPPER/Case:tag", "x/y@sha256:short"] {
            assert!(ArtifactRef::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn a_registrys_words_are_clipped_and_printable() {
        assert_eq!(clip("not\nfound\u{1b}[31m"), "not found [31m");
        let long = "x".repeat(10_000);
        assert_eq!(clip(&long).len(), ECHO_CHARS + " [...]".len());
    }

    #[test]
    fn secrets_are_masked_for_display() {
        let mut s = OciSettings::default();
        s.registries.insert(
            "r.example.com".into(),
            RegistrySettings {
                username: Some("ci".into()),
                password: Some("hunter2".into()),
                token: Some("tok".into()),
                ..Default::default()
            },
        );
        let shown = serde_json::to_string(&s.masked()).unwrap();
        assert!(
            !shown.contains("hunter2") && !shown.contains("tok\""),
            "{shown}"
        );
        assert!(shown.contains("\"ci\""), "{shown}");
    }
}
