//! The one way this host connects to Temporal: plain, TLS or mutual TLS, with an optional
//! API key, from `workflow.temporal`. Every client of the process (worker, REST API,
//! probes, verify) is built here.
//!
//! The CA file and the API key file are read at each new connection. The client
//! certificate is served by [`RotatingCertificate`], which reads the certificate and key
//! files again at a TLS handshake once either changed on disk, so a certificate rotated by
//! a sidecar (cert-manager, Vault) reaches the next connection without a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use temporalio_client::{
    CertifiedKey, Client, ClientOptions, Connection, ConnectionOptions, ResolvesClientCert,
    SignatureScheme, TlsOptions,
};

use crate::{temporal_url, TemporalSettings, WorkerError};

/// Connects a plain-text client to the frontend at `address` (tests, benchmarks and the
/// dev server, which run without TLS).
pub async fn connect(address: &str, namespace: &str) -> Result<Client, WorkerError> {
    connect_to(&TemporalSettings {
        address: address.into(),
        namespace: namespace.into(),
        ..TemporalSettings::default()
    })
    .await
}

/// Connects a client as `settings` say: TLS, client certificate and API key included.
pub async fn connect_to(settings: &TemporalSettings) -> Result<Client, WorkerError> {
    let address = settings.address.as_str();
    let mut url = temporal_url(address)?;
    let tls = if settings.tls.is_on() {
        // TLS always goes through the SDK's own connector (a client certificate resolver is
        // always given): it reports the server's TLS alerts, where tonic's path reports a
        // closed connection. tonic must see that connection's URL as plain `http`, or it
        // refuses it as HTTPS without its own TLS.
        let _ = url.set_scheme("http");
        Some(tls_options(settings)?)
    } else {
        None
    };
    let api_key = match (&settings.api_key, &settings.api_key_file) {
        (Some(key), _) => Some(key.trim().to_string()),
        (None, Some(file)) => Some(
            read(file, "workflow.temporal.api_key_file")?
                .trim()
                .to_string(),
        ),
        (None, None) => None,
    };
    let options = ConnectionOptions::new(url.clone())
        .maybe_tls_options(tls)
        .maybe_api_key(api_key)
        .build();
    let connection = match Connection::connect(options).await {
        Ok(connection) => connection,
        Err(e) => {
            let error = connect_error(address, &e);
            if error.is_permanent() || !settings.tls.is_on() {
                return Err(error);
            }
            // The SDK may see the server's TLS alert only as a closed connection (the alert
            // races its first write): ask the server once more, reading before writing.
            return Err(match tls_probe(settings, &url).await {
                Some(tls) => WorkerError::TlsRefused {
                    address: address.into(),
                    message: tls,
                },
                None => error,
            });
        }
    };
    Client::new(connection, ClientOptions::new(&settings.namespace).build())
        .map_err(|e| connect_error(address, &e))
}

/// The TLS options of `settings.tls`: its CA, its server name, and the client certificate
/// served from its files.
fn tls_options(settings: &TemporalSettings) -> Result<TlsOptions, WorkerError> {
    let tls = &settings.tls;
    let ca = match &tls.server_ca_file {
        Some(file) => {
            let pem = read(file, "workflow.temporal.tls.server_ca_file")?;
            let found = CertificateDer::pem_slice_iter(pem.as_bytes())
                .filter_map(Result::ok)
                .count();
            if found == 0 {
                return Err(WorkerError::Tls(format!(
                    "workflow.temporal.tls.server_ca_file {} holds no PEM certificate",
                    file.display()
                )));
            }
            Some(pem.into_bytes())
        }
        None => None,
    };
    Ok(TlsOptions::builder()
        .maybe_server_root_ca_cert(ca)
        .maybe_domain(tls.server_name.clone())
        .client_cert_resolver(client_certificate(settings)?)
        .build())
}

/// What the host presents: the pair from its files, rotating, or no certificate.
fn client_certificate(
    settings: &TemporalSettings,
) -> Result<Arc<dyn ResolvesClientCert>, WorkerError> {
    Ok(
        match (
            &settings.tls.client_cert_file,
            &settings.tls.client_key_file,
        ) {
            (Some(cert), Some(key)) => Arc::new(RotatingCertificate::load(cert, key)?),
            _ => Arc::new(NoClientCertificate),
        },
    )
}

fn read(file: &Path, key: &str) -> Result<String, WorkerError> {
    std::fs::read_to_string(file)
        .map_err(|e| WorkerError::Tls(format!("{key} {}: {e}", file.display())))
}

/// A connection error, told apart: a TLS failure (a certificate refused either way) is
/// named as such, and [`WorkerError::is_permanent`], so the host stops at start instead of
/// retrying what cannot succeed.
fn connect_error(address: &str, error: &(dyn std::error::Error + 'static)) -> WorkerError {
    let message = chain(error);
    match tls_failure(error).or_else(|| tls_failure_in_text(&message)) {
        Some(tls) => WorkerError::TlsRefused {
            address: address.into(),
            message: format!("{tls} ({message})"),
        },
        None => WorkerError::Connect {
            address: address.into(),
            message,
        },
    }
}

/// A TLS handshake of our own with the frontend, as `settings` configure it, then a short
/// read before anything is written: a server that refuses the client certificate says so
/// with an alert, which this read receives whatever the timing (the SDK's first write can
/// race it and see only a closed connection). `None` when the handshake and the read show
/// no TLS failure, or the probe cannot tell (no CA file named, no connection).
async fn tls_probe(settings: &TemporalSettings, url: &temporalio_client::Url) -> Option<String> {
    use tokio::io::AsyncReadExt;
    const PROBE: std::time::Duration = std::time::Duration::from_secs(5);
    let ca = std::fs::read(settings.tls.server_ca_file.as_ref()?).ok()?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(CertificateDer::pem_slice_iter(&ca).filter_map(Result::ok));
    let resolver = client_certificate(settings).ok()?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .ok()?
    .with_root_certificates(roots)
    .with_client_cert_resolver(resolver);
    let host = url.host_str()?.trim_matches(['[', ']']).to_string();
    let name = settings
        .tls
        .server_name
        .clone()
        .unwrap_or_else(|| host.clone());
    let name = rustls::pki_types::ServerName::try_from(name).ok()?;
    let tcp = tokio::time::timeout(
        PROBE,
        tokio::net::TcpStream::connect((host.as_str(), url.port_or_known_default()?)),
    )
    .await
    .ok()?
    .ok()?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let io_failure = |e: std::io::Error| -> Option<String> {
        tls_failure(&e).or_else(|| tls_failure_in_text(&e.to_string()))
    };
    let mut stream = match tokio::time::timeout(PROBE, connector.connect(name, tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return io_failure(e),
        Err(_) => return None,
    };
    // A refusal follows the handshake within milliseconds; silence means accepted.
    let mut byte = [0u8; 1];
    let read = std::time::Duration::from_secs(2);
    match tokio::time::timeout(read, stream.read(&mut byte)).await {
        Ok(Err(e)) => io_failure(e),
        _ => None,
    }
}

/// Every message of an error's chain, joined.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

/// The TLS error somewhere in an error's chain (rustls's own, possibly inside an I/O error).
fn tls_failure(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(describe(tls));
        }
        if let Some(tls) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(describe(tls));
        }
        next = e.source();
    }
    None
}

/// The TLS failure an error chain's text names: the SDK turns rustls's errors into strings
/// inside I/O errors on some paths, so the type is gone but rustls's wording stays.
fn tls_failure_in_text(chain: &str) -> Option<String> {
    use rustls::AlertDescription as Alert;
    if chain.contains("invalid peer certificate") {
        let why = chain
            .split("invalid peer certificate: ")
            .nth(1)
            .unwrap_or("");
        let why = why.split(['"', ')', ',']).next().unwrap_or(why);
        return Some(format!(
            "the frontend's certificate is not trusted ({why}): check workflow.temporal.tls.server_ca_file and server_name"
        ));
    }
    let alert = chain.split("received fatal alert: ").nth(1)?;
    let name = alert.split(|c: char| !c.is_ascii_alphanumeric()).next()?;
    let known = [
        Alert::CertificateRequired,
        Alert::BadCertificate,
        Alert::UnknownCA,
        Alert::CertificateUnknown,
        Alert::CertificateExpired,
        Alert::CertificateRevoked,
        Alert::AccessDenied,
        Alert::HandshakeFailure,
    ];
    let alert = known.into_iter().find(|a| format!("{a:?}") == name)?;
    Some(describe(&rustls::Error::AlertReceived(alert)))
}

/// What a TLS failure means for the operator.
fn describe(error: &rustls::Error) -> String {
    use rustls::AlertDescription as Alert;
    match error {
        rustls::Error::InvalidCertificate(why) => format!(
            "the frontend's certificate is not trusted ({why:?}): check workflow.temporal.tls.server_ca_file and server_name"
        ),
        rustls::Error::AlertReceived(Alert::CertificateRequired) => {
            "the frontend requires a client certificate: set workflow.temporal.tls.client_cert_file and client_key_file".into()
        }
        rustls::Error::AlertReceived(
            alert @ (Alert::BadCertificate
            | Alert::UnknownCA
            | Alert::CertificateUnknown
            | Alert::CertificateExpired
            | Alert::CertificateRevoked
            | Alert::AccessDenied),
        ) => format!(
            "the frontend refused this host's client certificate ({alert:?}): check workflow.temporal.tls.client_cert_file"
        ),
        other => format!("TLS with the frontend failed: {other}"),
    }
}

/// The client certificate and key from their files, read again at a handshake once either
/// file changed (a rotation); a rotation that cannot be read keeps the last good pair and
/// says so in the log.
#[derive(Debug)]
pub struct RotatingCertificate {
    cert: PathBuf,
    key: PathBuf,
    loaded: Mutex<(Option<SystemTime>, Arc<CertifiedKey>)>,
}

impl RotatingCertificate {
    /// Reads the pair once; a pair that cannot be read or does not match is an error.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, WorkerError> {
        let pair = certified_key(cert, key)?;
        Ok(Self {
            cert: cert.into(),
            key: key.into(),
            loaded: Mutex::new((changed_at(cert, key), Arc::new(pair))),
        })
    }

    fn current(&self) -> Arc<CertifiedKey> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        let now = changed_at(&self.cert, &self.key);
        if now != loaded.0 {
            match certified_key(&self.cert, &self.key) {
                Ok(pair) => {
                    tracing::info!(cert = %self.cert.display(), "Temporal client certificate reloaded");
                    *loaded = (now, Arc::new(pair));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Temporal client certificate changed but cannot be read; keeping the last one");
                }
            }
        }
        loaded.1.clone()
    }
}

impl ResolvesClientCert for RotatingCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// TLS without a client certificate (a frontend that does not ask for one).
#[derive(Debug)]
struct NoClientCertificate;

impl ResolvesClientCert for NoClientCertificate {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

/// The later of the two files' modification times.
fn changed_at(cert: &Path, key: &Path) -> Option<SystemTime> {
    let time = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    time(cert).max(time(key))
}

fn certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, WorkerError> {
    let cert_pem = read(cert, "workflow.temporal.tls.client_cert_file")?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| WorkerError::Tls(format!("client certificate {}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(WorkerError::Tls(format!(
            "workflow.temporal.tls.client_cert_file {} holds no PEM certificate",
            cert.display()
        )));
    }
    let key_pem = read(key, "workflow.temporal.tls.client_key_file")?;
    let private = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| WorkerError::Tls(format!("client key {}: {e}", key.display())))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&private)
        .map_err(|e| WorkerError::Tls(format!("client key {}: {e}", key.display())))?;
    let pair = CertifiedKey::new(chain, signer);
    pair.keys_match().map_err(|e| {
        WorkerError::Tls(format!(
            "client certificate {} and key {} do not belong together: {e}",
            cert.display(),
            key.display()
        ))
    })?;
    Ok(pair)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_failures_are_told_apart_from_their_wording() {
        let seen = |text: &str| tls_failure_in_text(text).unwrap_or_default();
        // As the SDK reports a refused client certificate (seen against Temporal 1.32).
        let refused = "`get_system_info` call error after connection: Status { code: Unknown, \
            message: \"transport error\", source: Some(tonic::transport::Error(Transport, \
            hyper::Error(Io, Custom { kind: InvalidData, error: \"received fatal alert: \
            BadCertificate\" }))) }";
        assert!(seen(refused).contains("refused this host's client certificate"));
        assert!(seen("received fatal alert: CertificateRequired")
            .contains("requires a client certificate"));
        assert!(seen("invalid peer certificate: UnknownIssuer").contains("is not trusted"));
        assert_eq!(
            tls_failure_in_text("tcp connect error: Connection refused"),
            None
        );
        assert_eq!(
            tls_failure_in_text("received fatal alert: NoSuchAlert"),
            None
        );
    }

    #[test]
    fn a_tls_refusal_is_permanent_and_an_unreachable_server_is_not() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::BadCertificate),
        );
        let refused = connect_error("temporal:7233", &io);
        assert!(refused.is_permanent(), "{refused}");
        assert!(
            refused.to_string().contains("client certificate"),
            "{refused}"
        );
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let unreachable = connect_error("temporal:7233", &io);
        assert!(!unreachable.is_permanent(), "{unreachable}");
    }
}
