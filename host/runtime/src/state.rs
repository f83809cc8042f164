//! The per-call store data: WASI configured deny-by-default, the activity's grants,
//! limits and call context.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_config::{WasiConfig, WasiConfigVariables};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capabilities::context::CallContext;
use crate::capabilities::http::AllowlistHooks;
use crate::capabilities::keyvalue::KeyValueBackend;
use crate::grants::Grants;
use crate::limits::{ActivityLimiter, ActivityLimits};
use crate::{ComponentDigest, GuestObserver};

/// Store data of one activity call.
pub struct ActivityState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) http: WasiHttpCtx,
    pub(crate) http_hooks: AllowlistHooks,
    pub(crate) config: Arc<WasiConfigVariables>,
    pub(crate) limiter: ActivityLimiter,
    pub(crate) grants: Arc<Grants>,
    pub(crate) key_value: Option<Arc<dyn KeyValueBackend>>,
    pub(crate) call: CallContext,
    pub(crate) version: ComponentDigest,
    pub(crate) observer: Option<Arc<dyn GuestObserver>>,
    pub(crate) stdout: GuestOutput,
    pub(crate) stderr: GuestOutput,
}

/// What [`ActivityState::new`] needs.
pub(crate) struct StateParts {
    pub grants: Arc<Grants>,
    pub config: Arc<WasiConfigVariables>,
    pub limits: ActivityLimits,
    pub key_value: Option<Arc<dyn KeyValueBackend>>,
    pub call: CallContext,
    pub version: ComponentDigest,
    pub observer: Option<Arc<dyn GuestObserver>>,
}

impl ActivityState {
    /// Fresh state for one call: no environment, no arguments, no preopened directories,
    /// sockets linked but every use denied; stdout and stderr captured for the log.
    pub(crate) fn new(parts: StateParts) -> Self {
        let stdout = GuestOutput::new(parts.limits.max_log_bytes as usize);
        let stderr = GuestOutput::new(parts.limits.max_log_bytes as usize);
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let activity = parts.call.info.activity_type.clone();
        Self {
            wasi,
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            http_hooks: AllowlistHooks::new(parts.grants.clone(), activity),
            config: parts.config,
            limiter: ActivityLimiter::new(parts.limits.max_memory_bytes),
            grants: parts.grants,
            key_value: parts.key_value,
            call: parts.call,
            version: parts.version,
            observer: parts.observer,
            stdout,
            stderr,
        }
    }

    pub(crate) fn wasi_config(&mut self) -> WasiConfig<'_> {
        WasiConfig::from(&*self.config)
    }
}

impl WasiView for ActivityState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for ActivityState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}

/// A guest's stdout or stderr: keeps the first bytes up to a cap for the log and accepts
/// (and drops) the rest, so a chatty guest never fails on a write.
#[derive(Clone)]
pub(crate) struct GuestOutput {
    buffer: Arc<Mutex<Vec<u8>>>,
    capacity: usize,
}

impl GuestOutput {
    fn new(capacity: usize) -> Self {
        Self {
            buffer: Arc::new(Mutex::new(Vec::new())),
            capacity,
        }
    }

    /// What the guest wrote, up to the cap, as lossy UTF-8.
    pub(crate) fn text(&self) -> String {
        let buf = self.buffer.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&buf).into_owned()
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Ok(mut b) = self.buffer.lock() {
            let room = self.capacity.saturating_sub(b.len());
            b.extend_from_slice(&buf[..buf.len().min(room)]);
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
