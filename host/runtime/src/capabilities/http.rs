//! Outgoing HTTP (`wasi:http/outgoing-handler`), limited to the activity's allowed hosts.

use std::future::Future;
use std::sync::Arc;

use wasmtime::component::Linker;
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks, WasiHttpView,
};

use crate::grants::{Capability, Grants};

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

/// Refuses requests to hosts not on the activity's allowlist, and sends the others.
pub struct AllowlistHooks {
    grants: Arc<Grants>,
    activity: String,
}

impl AllowlistHooks {
    /// Hooks for one call of `activity` with `grants`.
    pub fn new(grants: Arc<Grants>, activity: String) -> Self {
        Self { grants, activity }
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

impl WasiHttpHooks for AllowlistHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        let uri = request.uri();
        let host = uri.host().unwrap_or_default().to_string();
        let port = uri.port_u16().or(match uri.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        });
        if !self.grants.allows_host(&host, port) {
            tracing::warn!(
                activity = self.activity.as_str(),
                host = host.as_str(),
                port,
                "refused outgoing HTTP request to a host not on the allowlist"
            );
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        let default: &mut dyn WasiHttpHooks = wasmtime_wasi_http::default_hooks();
        default.send_request(request, options, fut)
    }
}
