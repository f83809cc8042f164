//! TLS to PostgreSQL, with libpq's meaning of the URL's `sslmode` and `sslrootcert`, so the
//! URL a managed database hands out works unchanged.
//!
//! | `sslmode` | encrypted | server certificate checked |
//! | --- | --- | --- |
//! | `disable` | no | - |
//! | `allow`, `prefer` (the default) | when the server offers it | no |
//! | `require` | yes | no; with `sslrootcert`, its chain (as `verify-ca`) |
//! | `verify-ca` | yes | its chain, against `sslrootcert` |
//! | `verify-full` | yes | its chain and that it names the host connected to |
//!
//! `sslrootcert` is a PEM file of CA certificates, or `system` for the public CAs (Mozilla's
//! set, built in: the image needs no CA bundle). `verify-ca` and `verify-full` need one (libpq
//! would look for `~/.postgresql/root.crt`; a host says where). Client certificates
//! (`sslcert`, `sslkey`) are refused with an error saying so. tokio-postgres itself knows only
//! `disable`, `prefer` and `require`; the parameters are read here and the URL handed on with
//! the `sslmode` it understands.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::PgError;

/// What a connection checks of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Nothing: the connection is encrypted, the server not authenticated.
    Nothing,
    /// That a trusted CA issued it.
    Chain,
    /// That a trusted CA issued it for the host connected to.
    ChainAndName,
}

/// A database to connect to: the configuration tokio-postgres reads, and the TLS it uses.
pub struct Target {
    /// Host, port, user, database and tokio-postgres's own `sslmode`.
    pub config: tokio_postgres::Config,
    /// The TLS connector (unused with `sslmode=disable`).
    pub tls: MakeRustlsConnect,
}

/// Reads `url` (a `postgres://` URL or a `key=value` string) with libpq's TLS parameters.
pub fn target(url: &str) -> Result<Target, PgError> {
    let (rest, mode, root) = split(url)?;
    let (wire, check) = match mode.as_deref().unwrap_or("prefer") {
        "disable" => ("disable", Check::Nothing),
        "allow" | "prefer" => ("prefer", Check::Nothing),
        "require" if root.is_some() => ("require", Check::Chain),
        "require" => ("require", Check::Nothing),
        "verify-ca" => ("require", Check::Chain),
        "verify-full" => ("require", Check::ChainAndName),
        other => {
            return Err(PgError::Url(format!(
            "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full"
        )))
        }
    };
    let mut config: tokio_postgres::Config = with_param(&rest, "sslmode", wire)
        .parse()
        .map_err(|e: tokio_postgres::Error| PgError::Url(e.to_string()))?;
    config.ssl_mode(match wire {
        "disable" => tokio_postgres::config::SslMode::Disable,
        "prefer" => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = match (check, root.as_deref()) {
        (Check::Nothing, _) => None,
        (_, None) => {
            return Err(PgError::Url(format!(
                "sslmode={} needs sslrootcert: a PEM file of the CA certificates to trust, or \
                 `system` for the public CAs",
                mode.unwrap_or_default()
            )))
        }
        (_, Some(root)) => Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots(root)?), provider.clone())
                .build()
                .map_err(|e| PgError::Url(format!("sslrootcert: {e}")))?,
        ),
    };
    let verifier = Arc::new(ServerCheck {
        chain,
        name: check == Check::ChainAndName,
        provider: provider.clone(),
    });
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PgError::Url(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Target {
        config,
        tls: MakeRustlsConnect::new(tls),
    })
}

/// `url` without `sslmode` and `sslrootcert`, and their values.
fn split(url: &str) -> Result<(String, Option<String>, Option<String>), PgError> {
    let mut mode = None;
    let mut root = None;
    let mut take = |key: &str, value: &str| -> Result<bool, PgError> {
        match key {
            "sslmode" => mode = Some(value.to_string()),
            "sslrootcert" => root = Some(value.to_string()),
            "sslcert" | "sslkey" | "sslpassword" => {
                return Err(PgError::Url(format!(
                    "{key}: client certificates to PostgreSQL are not supported; use a password \
                     over TLS (sslmode=verify-full)"
                )))
            }
            _ => return Ok(false),
        }
        Ok(true)
    };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let mut parsed = url::Url::parse(url).map_err(|e| PgError::Url(e.to_string()))?;
        let mut kept = Vec::new();
        for (k, v) in parsed.query_pairs() {
            if !take(&k, &v)? {
                kept.push((k.into_owned(), v.into_owned()));
            }
        }
        parsed.set_query(None);
        if !kept.is_empty() {
            parsed.query_pairs_mut().extend_pairs(kept);
        }
        Ok((parsed.to_string(), mode, root))
    } else {
        let mut kept = Vec::new();
        for word in url.split_whitespace() {
            let consumed = match word.split_once('=') {
                Some((k, v)) => take(k.trim(), v.trim_matches('\''))?,
                None => false,
            };
            if !consumed {
                kept.push(word);
            }
        }
        Ok((kept.join(" "), mode, root))
    }
}

/// `url` with `key=value` added.
fn with_param(url: &str, key: &str, value: &str) -> String {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}{key}={value}")
    } else {
        format!("{url} {key}={value}")
    }
}

/// The CAs `sslrootcert` names.
fn roots(root: &str) -> Result<RootCertStore, PgError> {
    let mut store = RootCertStore::empty();
    if root == "system" {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(store);
    }
    let bad = |e: String| PgError::Url(format!("sslrootcert {root}: {e}"));
    let pem = std::fs::read(root).map_err(|e| bad(e.to_string()))?;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        store.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if store.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    Ok(store)
}

/// What a connection checks of the server's certificate: nothing (libpq's `prefer`, and
/// `require` without a root: encrypted, not authenticated), its chain (`verify-ca`), or its
/// chain and name (`verify-full`). The handshake's signatures are checked in every case.
#[derive(Debug)]
struct ServerCheck {
    /// The chain's verifier; `None`: no check.
    chain: Option<Arc<WebPkiServerVerifier>>,
    /// Whether the certificate must name the host.
    name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ServerCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_parameters_are_read_and_the_rest_handed_on() {
        let (rest, mode, root) = split(
            "postgres://u:p@db:5432/app?sslmode=verify-full&sslrootcert=/ca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u:p@db:5432/app?application_name=x");
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some("/ca.pem"));
        let (rest, mode, _) = split("host=db user=u sslmode=require dbname=app").unwrap();
        assert_eq!(rest, "host=db user=u dbname=app");
        assert_eq!(mode.as_deref(), Some("require"));
        assert_eq!(
            with_param("postgres://db/app", "sslmode", "require"),
            "postgres://db/app?sslmode=require"
        );
        for refused in [
            "postgres://db/app?sslmode=verify-full",
            "postgres://db/app?sslmode=sometimes",
            "postgres://db/app?sslcert=/c.pem",
            "postgres://db/app?sslmode=verify-ca&sslrootcert=/nonexistent.pem",
        ] {
            let e = target(refused).err().expect(refused).to_string();
            assert!(e.contains("ssl"), "{refused}: {e}");
        }
        assert!(target("postgres://db/app?sslmode=verify-full&sslrootcert=system").is_ok());
        assert!(target("postgres://db/app").is_ok());
    }
}
