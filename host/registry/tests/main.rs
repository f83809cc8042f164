//! The registry's integration tests, one binary: deploys, versions and rollouts over a real
//! runtime and store.

mod faults;
mod policy;
mod registry;
mod rollout;
