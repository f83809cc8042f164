//! Base WASI 0.2 (io, clocks, random, cli, filesystem types, sockets), deny-by-default: no
//! environment, no arguments, no preopened directories, sockets linked for language runtimes
//! that import them but every use denied, stdout and stderr captured up to a cap for the log.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime::component::Linker;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiView};

use crate::grants::Capability;

/// The interfaces of this room, for the import check.
pub(crate) const OFFERS: &[(&str, Capability)] = &[
    ("wasi:io/error", Capability::Base),
    ("wasi:io/poll", Capability::Base),
    ("wasi:io/streams", Capability::Base),
    ("wasi:clocks/monotonic-clock", Capability::Base),
    ("wasi:clocks/wall-clock", Capability::Base),
    ("wasi:random/random", Capability::Base),
    ("wasi:random/insecure", Capability::Base),
    ("wasi:random/insecure-seed", Capability::Base),
    ("wasi:cli/environment", Capability::Base),
    ("wasi:cli/exit", Capability::Base),
    ("wasi:cli/stdin", Capability::Base),
    ("wasi:cli/stdout", Capability::Base),
    ("wasi:cli/stderr", Capability::Base),
    ("wasi:cli/terminal-input", Capability::Base),
    ("wasi:cli/terminal-output", Capability::Base),
    ("wasi:cli/terminal-stdin", Capability::Base),
    ("wasi:cli/terminal-stdout", Capability::Base),
    ("wasi:cli/terminal-stderr", Capability::Base),
    ("wasi:filesystem/types", Capability::Base),
    ("wasi:filesystem/preopens", Capability::Base),
    // Linked because language runtimes (CPython, StarlingMonkey, TinyGo) import them, but
    // inert: every socket operation and name lookup is denied (see `context`).
    ("wasi:sockets/network", Capability::Base),
    ("wasi:sockets/instance-network", Capability::Base),
    ("wasi:sockets/tcp", Capability::Base),
    ("wasi:sockets/tcp-create-socket", Capability::Base),
    ("wasi:sockets/udp", Capability::Base),
    ("wasi:sockets/udp-create-socket", Capability::Base),
    ("wasi:sockets/ip-name-lookup", Capability::Base),
];

/// Adds base WASI to `linker`.
pub fn add_to_linker<T: WasiView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)
}

/// A WASI context for one call: nothing from the host, output captured into `stdout` and
/// `stderr`.
pub(crate) fn context(stdout: &GuestOutput, stderr: &GuestOutput) -> WasiCtx {
    WasiCtxBuilder::new()
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build()
}

/// A guest's stdout or stderr: keeps the first bytes up to a cap for the log and accepts
/// (and drops) the rest, so a chatty guest never fails on a write.
#[derive(Clone)]
pub(crate) struct GuestOutput {
    buffer: Arc<Mutex<Vec<u8>>>,
    capacity: usize,
}

impl GuestOutput {
    pub(crate) fn new(capacity: usize) -> Self {
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
