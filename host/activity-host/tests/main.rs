//! The host's integration tests, one binary: each module runs the assembled host (runtime,
//! registry, worker, REST API) the way users and operators do, against real servers.

mod support;

mod api;
mod authoring;
mod autoscaling;
mod browser;
mod builds;
mod cli;
mod cluster;
mod contract;
mod declarative;
mod deploy;
mod deployments;
mod dev_server;
mod docs;
mod examples;
mod fleet;
mod fuzz;
mod hardening;
mod joining;
mod liveness;
mod local_mode;
mod oci;
mod polyglot;
mod rollout;
mod security;
mod seed;
mod storage;
mod telemetry;
mod typed_clients;
mod usage;
mod workflows_doc;
