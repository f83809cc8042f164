//! Outgoing HTTP (`wasi:http/outgoing-handler`), under the activity's grants and the host's
//! egress policy ([`crate::egress`]): the host name must be granted; every address it
//! resolves to is checked, and a special one (loopback, link-local, private, ...) must be
//! named by the grant itself; the connection goes to the checked address (no second
//! lookup); secrets' placeholders become values only toward their bound hosts; redirects
//! are answered to the guest, never followed; every request is audited.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::uri::Scheme;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use wasmtime::component::Linker;
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks, WasiHttpView,
};

use crate::capabilities::context::ActivityInfo;
use crate::egress::{
    names_address, placeholder, secret_binding, special_class, Egress, EgressRecord,
};
use crate::grants::{Capability, Grants, HostPattern};
use crate::usage::EgressMeter;
use crate::ComponentDigest;

/// The interfaces of this room, for the import check: the types come with base WASI, the
/// handler needs `allowed_hosts`.
pub(crate) const OFFERS: &[(&str, Capability)] = &[
    ("wasi:http/types", Capability::Base),
    ("wasi:http/outgoing-handler", Capability::OutgoingHttp),
];

/// Adds `wasi:http` (types and the outgoing handler) to `linker`.
pub fn add_to_linker<T: WasiHttpView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
}

/// Sends a call's outgoing requests under its grants and the host's egress.
pub struct AllowlistHooks {
    grants: Arc<Grants>,
    egress: Arc<Egress>,
    base: EgressRecord,
    /// The call's requests and bytes, for its usage.
    pub(crate) meter: Arc<EgressMeter>,
}

impl AllowlistHooks {
    /// Hooks for one call.
    pub fn new(
        grants: Arc<Grants>,
        egress: Arc<Egress>,
        info: &ActivityInfo,
        version: &ComponentDigest,
    ) -> Self {
        let base = EgressRecord {
            at_ms: 0,
            activity_type: info.activity_type.clone(),
            version: version.as_str().to_string(),
            workflow_id: info.workflow_id.clone(),
            run_id: info.run_id.clone(),
            activity_id: info.activity_id.clone(),
            method: String::new(),
            host: String::new(),
            port: None,
            address: None,
            outcome: String::new(),
            reason: None,
            status: None,
            request_bytes: 0,
            response_bytes: 0,
            secrets: Vec::new(),
            host_label: String::new(),
        };
        Self {
            grants,
            egress,
            base,
            meter: Arc::default(),
        }
    }
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl WasiHttpHooks for AllowlistHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        drop(fut);
        let grants = self.grants.clone();
        let egress = self.egress.clone();
        let mut record = self.base.clone();
        let meter = self.meter.clone();
        Box::new(async move {
            let uri = request.uri();
            record.at_ms = now_ms();
            record.method = request.method().to_string();
            record.host = uri
                .host()
                .unwrap_or_default()
                .trim_matches(['[', ']'])
                .to_string();
            let tls = uri.scheme() == Some(&Scheme::HTTPS);
            record.port = uri.port_u16().or(Some(if tls { 443 } else { 80 }));
            record.host_label = grants.host_label(&record.host, record.port);
            match send(&grants, &egress, request, options, tls, &mut record).await {
                Ok((response, io, counter)) => {
                    record.status = Some(response.status().as_u16());
                    record.outcome = "sent".into();
                    let (parts, body) = response.into_parts();
                    let read = Arc::new(AtomicU64::new(0));
                    meter.sent([counter.clone(), read.clone()]);
                    let audited = MeteredBody {
                        inner: body,
                        count: read,
                        on_end: Some(Box::new(move |read| {
                            record.request_bytes = counter.load(Ordering::Relaxed);
                            record.response_bytes = read;
                            egress.record(record);
                        })),
                    };
                    Ok((
                        http::Response::from_parts(parts, audited.boxed_unsync()),
                        io,
                    ))
                }
                Err((outcome, reason, error)) => {
                    record.outcome = outcome.into();
                    record.reason = Some(reason);
                    egress.record(record);
                    Err(error)
                }
            }
        })
    }
}

type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    Arc<AtomicU64>,
);
type Refusal = (&'static str, String, HttpError);

/// A refusal; the audit record logs it (at `warn`).
fn refused(reason: String) -> Refusal {
    ("refused", reason, HttpError::HttpRequestDenied)
}

/// The checks, the substitution and the exchange of one request.
async fn send(
    grants: &Grants,
    egress: &Egress,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    tls: bool,
    record: &mut EgressRecord,
) -> Result<Sent, Refusal> {
    let host = record.host.clone();
    let port = record.port.unwrap_or(80);
    if !grants.allows_host(&host, Some(port)) {
        return Err(refused(format!(
            "{host}:{port} is not among the activity's allowed hosts"
        )));
    }
    let connect_timeout = options
        .and_then(|o| o.connect_timeout)
        .unwrap_or(Duration::from_secs(30));
    let addrs =
        match tokio::time::timeout(connect_timeout, egress.resolver.resolve(&host, port)).await {
            Ok(Ok(addrs)) if !addrs.is_empty() => addrs,
            Ok(Ok(_)) | Ok(Err(_)) => {
                return Err((
                    "failed",
                    format!("{host} does not resolve"),
                    HttpError::DnsError {
                        rcode: None,
                        info_code: None,
                    },
                ))
            }
            Err(_) => {
                return Err((
                    "failed",
                    format!("resolving {host} timed out"),
                    HttpError::DnsTimeout,
                ))
            }
        };
    // Every address must pass: a name answering one public and one internal address is
    // refused rather than tried in turn.
    let mut chosen: Option<SocketAddr> = None;
    for addr in &addrs {
        if let Some(class) = special_class(addr.ip()) {
            if !names_address(grants, addr.ip(), Some(port)) {
                record.address = Some(addr.to_string());
                return Err(refused(format!(
                    "{host} resolves to {} ({class}), which the grant does not name",
                    addr.ip()
                )));
            }
        }
        chosen.get_or_insert(*addr);
    }
    let addr = chosen.expect("addrs is not empty");
    record.address = Some(addr.to_string());
    // Secrets: placeholders become values only toward the secrets' bound hosts.
    let secrets = egress.secrets();
    let applicable: Vec<Applicable> = grants
        .secrets
        .iter()
        .filter_map(|name| {
            let secret = secrets.get(name)?;
            let (mut bound, mut plain) = (false, false);
            for (plain_ok, pattern) in secret.hosts.iter().map(|h| secret_binding(h)) {
                if HostPattern::parse(pattern).matches(&host, Some(port)) {
                    bound = true;
                    plain |= plain_ok;
                }
            }
            bound.then(|| Applicable {
                name: name.clone(),
                placeholder: placeholder(name),
                value: secret.value.clone(),
                over_plain_http: plain,
            })
        })
        .collect();
    if !applicable.is_empty() {
        request = substitute(request, &applicable, tls, egress, record).await?;
    }
    let counter = Arc::new(AtomicU64::new(0));
    let request = request.map(|body| {
        MeteredBody {
            inner: body,
            count: counter.clone(),
            on_end: None,
        }
        .boxed_unsync()
    });
    let stream = match tokio::time::timeout(connect_timeout, egress.connector.connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            return Err((
                "failed",
                format!("connect to {addr}: {e}"),
                HttpError::ConnectionRefused,
            ))
        }
        Err(_) => {
            return Err((
                "failed",
                format!("connect to {addr} timed out"),
                HttpError::ConnectionTimeout,
            ))
        }
    };
    let (response, io) = exchange(stream, request, &host, tls, options, connect_timeout)
        .await
        .map_err(|e| ("failed", format!("{e:?}"), e))?;
    Ok((response, io, counter))
}

/// Reads the body whole (up to `runtime.egress.max_substituted_body_bytes`) and replaces
/// each applicable placeholder with its value in the headers and the body.
/// A secret bound to the request's host.
struct Applicable {
    name: String,
    placeholder: String,
    value: String,
    /// Its binding lets it go over plain HTTP.
    over_plain_http: bool,
}

/// Replaces the placeholders of `applicable` secrets in `request`'s headers and body;
/// refuses a plain-HTTP request (`tls` false) that carries a secret bound for TLS only.
async fn substitute(
    request: http::Request<WasiBody>,
    applicable: &[Applicable],
    tls: bool,
    egress: &Egress,
    record: &mut EgressRecord,
) -> Result<http::Request<WasiBody>, Refusal> {
    let (mut parts, body) = request.into_parts();
    let limit = egress.settings().max_substituted_body_bytes;
    let collected = http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .map_err(|_| {
            refused(format!(
                "the request body is over runtime.egress.max_substituted_body_bytes ({limit}), the most a secret is substituted into"
            ))
        })?
        .to_bytes();
    let mut used = Vec::new();
    let mut body = collected.to_vec();
    for Applicable {
        name,
        placeholder,
        value,
        over_plain_http,
    } in applicable
    {
        let mut hit = false;
        for (_, header) in parts.headers.iter_mut() {
            let Ok(text) = header.to_str() else { continue };
            if text.contains(placeholder.as_str()) {
                if let Ok(v) =
                    http::HeaderValue::from_str(&text.replace(placeholder.as_str(), value))
                {
                    *header = v;
                    hit = true;
                }
            }
        }
        let replaced = replace_all(&body, placeholder.as_bytes(), value.as_bytes());
        if replaced.len() != body.len() || replaced != body {
            body = replaced;
            hit = true;
        }
        if hit && !tls && !over_plain_http {
            return Err(refused(format!(
                "the request carries secret {name} over plain HTTP, and the secret goes only over TLS (https); bind it to http://{} to allow plain HTTP",
                record.host
            )));
        }
        if hit {
            used.push(name.clone());
        }
    }
    if parts.headers.contains_key(http::header::CONTENT_LENGTH) {
        parts.headers.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from(body.len()),
        );
    }
    record.secrets = used;
    let body = http_body_util::Full::new(Bytes::from(body))
        .map_err(|never| match never {})
        .boxed_unsync();
    Ok(http::Request::from_parts(parts, body))
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return haystack.to_vec();
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// TLS when asked (server name from the host, the webpki roots), then HTTP/1.1 over the
/// checked connection; the request line carries only the path.
async fn exchange(
    stream: tokio::net::TcpStream,
    mut request: http::Request<WasiBody>,
    host: &str,
    tls: bool,
    options: Option<RequestOptions>,
    connect_timeout: Duration,
) -> Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ),
    HttpError,
> {
    trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
    impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Io for T {}
    let stream: Box<dyn Io> = if tls {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|_| HttpError::TlsProtocolError)?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|_| HttpError::TlsCertificateError)?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let stream = tokio::time::timeout(connect_timeout, connector.connect(name, stream))
            .await
            .map_err(|_| HttpError::ConnectionTimeout)?
            .map_err(HttpError::Tls)?;
        Box::new(stream)
    } else {
        Box::new(stream)
    };
    let (mut sender, conn) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::Builder::new().handshake(hyper_util::rt::TokioIo::new(stream)),
    )
    .await
    .map_err(|_| HttpError::ConnectionTimeout)?
    .map_err(HttpError::Hyper)?;
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(
            request
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/"),
        )
        .build()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;
    let first_byte = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(Duration::from_secs(600));
    // The connection runs beside the call; its end (or failure) is the returned future's.
    let (done, ended) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = done.send(conn.await);
    });
    let response = tokio::time::timeout(first_byte, sender.send_request(request))
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)?
        .map_err(HttpError::Hyper)?;
    let io = async move {
        match ended.await {
            Ok(Err(e)) => Err(HttpError::Hyper(e)),
            _ => Ok(()),
        }
    };
    let response = response.map(|incoming| incoming.map_err(HttpError::Hyper).boxed_unsync());
    Ok((response, Box::new(io)))
}

/// A body that counts the bytes it yields and, for a response, records the request in the
/// audit when the guest has read it all (or dropped it), with the bytes of both directions.
struct MeteredBody {
    inner: WasiBody,
    count: Arc<AtomicU64>,
    on_end: Option<Box<dyn FnOnce(u64) + Send>>,
}

impl MeteredBody {
    fn finish(&mut self) {
        if let Some(end) = self.on_end.take() {
            end(self.count.load(Ordering::Relaxed));
        }
    }
}

impl Drop for MeteredBody {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Body for MeteredBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.count.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
            }
            Poll::Ready(None) => self.finish(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
