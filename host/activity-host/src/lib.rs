//! The `activity-host` binary's library: configuration, the dev server supervisor, and the
//! assembly of runtime, worker and API into the roles `dev`, `worker` and `server`.

pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod dev_server;
pub mod host;
mod host_error;
pub mod live_reload;
pub mod manifest;
pub mod reference;
pub mod roles;
pub mod scaffold;
pub mod telemetry;
pub mod watch;
