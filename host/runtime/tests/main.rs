//! The runtime's integration tests, one binary: real components from activities-wasm/ in
//! real wasmtime.

mod support;

mod convert;
mod egress;
mod loading;
mod misbehaving;
mod reference;
mod schema;
mod usage;
