//! The host's capabilities, one room each: its WIT binding (or the wasmtime crate that
//! implements it), the view of a call's state it works on, the interfaces it offers (for the
//! import check) and its `add_to_linker`. Rooms know nothing of the store's data type: the
//! runtime's `ActivityState` holds their per-call parts and hands each room its view.
//!
//! A new capability is a new room here, plus one line in [`OFFERED`], one in the runtime's
//! `build_linker`, and its part of `ActivityState`.

pub mod base;
pub mod config;
pub mod context;
pub mod http;
pub mod keyvalue;
pub mod logging;

use crate::grants::Capability;

/// Every interface the host offers, room by room, and the capability it belongs to.
pub(crate) const OFFERED: &[&[(&str, Capability)]] = &[
    base::OFFERS,
    http::OFFERS,
    config::OFFERS,
    context::OFFERS,
    logging::OFFERS,
    keyvalue::OFFERS,
];

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
