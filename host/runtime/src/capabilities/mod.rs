//! The host's capabilities: one module per interface it implements for guests.
//!
//! Standard WASI (io, clocks, random, cli, filesystem, http) comes from `wasmtime-wasi` and
//! `wasmtime-wasi-http`, configured deny-by-default in [`crate::state`]; `wasi:config` from
//! `wasmtime-wasi-config`. The modules here implement the rest.

pub mod context;
pub mod http;
pub mod keyvalue;
pub mod logging;

/// Host bindings generated from `wit/` for the interfaces this crate implements itself.
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        interfaces: "
            import activity-host:activity/types@0.1.0;
            import activity-host:activity/context@0.1.0;
            import wasi:logging/logging@0.1.0-draft;
            import wasi:keyvalue/store@0.2.0-draft;
        ",
        imports: {
            "wasi:keyvalue/store": async | trappable,
            default: trappable,
        },
        with: {
            "wasi:keyvalue/store.bucket": crate::capabilities::keyvalue::Bucket,
        },
    });
}
