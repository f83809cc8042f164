//! The `activity-host` binary's library: configuration and the wiring of the runtime.

pub mod config;
pub mod reference;
