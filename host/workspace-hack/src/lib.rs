//! No code: see Cargo.toml. Depending on this crate turns on the features that make the
//! binary's build and the workspace's test build one build.
