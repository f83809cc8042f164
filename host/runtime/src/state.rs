//! The per-call store data: each capability room's part of one call, and the views the
//! rooms work on. Imports go one way: this module uses the rooms, the rooms never use it.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_config::{WasiConfig, WasiConfigVariables};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capabilities::base::{self, GuestOutput};
use crate::capabilities::context::{CallContext, ContextView};
use crate::capabilities::http::AllowlistHooks;
use crate::capabilities::keyvalue::{KeyValueBackend, KeyValueView};
use crate::capabilities::logging::{GuestObserver, LoggingView};
use crate::grants::Grants;
use crate::limits::{ActivityLimiter, ActivityLimits};
use crate::ComponentDigest;

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
    pub egress: Arc<crate::egress::Egress>,
}

impl ActivityState {
    /// Fresh state for one call: no environment, no arguments, no preopened directories,
    /// sockets linked but every use denied; stdout and stderr captured for the log.
    pub(crate) fn new(parts: StateParts) -> Self {
        let stdout = GuestOutput::new(parts.limits.max_log_bytes as usize);
        let stderr = GuestOutput::new(parts.limits.max_log_bytes as usize);
        let wasi = base::context(&stdout, &stderr);
        let hooks = AllowlistHooks::new(
            parts.grants.clone(),
            parts.egress,
            &parts.call.info,
            &parts.version,
        );
        Self {
            wasi,
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            http_hooks: hooks,
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

    pub(crate) fn context(&mut self) -> ContextView<'_> {
        ContextView {
            call: &self.call,
            version: &self.version,
        }
    }

    pub(crate) fn logging(&mut self) -> LoggingView<'_> {
        LoggingView {
            call: &self.call,
            version: &self.version,
            observer: self.observer.as_ref(),
        }
    }

    pub(crate) fn key_value(&mut self) -> KeyValueView<'_> {
        KeyValueView {
            backend: self.key_value.as_ref(),
            granted: &self.grants.key_value_stores,
            table: &mut self.table,
        }
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
