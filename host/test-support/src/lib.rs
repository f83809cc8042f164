//! Shared test helpers: the real Temporal dev server started on free ports with a
//! throw-away database, a local HTTP sink that records requests, and a workflow that calls
//! activities by name the way a workflow in another SDK does.

pub mod caller;
mod dev_server;
mod http_sink;
pub mod oci_registry;
pub mod postgres;
pub mod store_contract;
pub mod temporal_cluster;

use std::path::PathBuf;

pub use dev_server::{free_port, temporal_cli, DevServer, DevServerError};
pub use http_sink::{HttpSink, Received};
pub use oci_registry::OciRegistry;
pub use postgres::Postgres;
pub use temporal_cluster::{Certificates, TemporalCluster, Versions};

/// The directory of the package whose tests are running, as cargo gives it to the running
/// test (`CARGO_MANIFEST_DIR` at run time); outside cargo (the benchmarks, run by `make
/// bench-*` from the checkout), the current directory. Not `env!("CARGO_MANIFEST_DIR")`: a
/// target directory shared by two checkouts keeps a test binary built in the other one when
/// the sources are older than it, and the path baked into that binary is the other
/// checkout's.
pub fn package_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .expect("neither CARGO_MANIFEST_DIR nor a current directory")
}

/// The root of the checkout the tests run in: the nearest directory above [`package_dir`]
/// holding `rust-toolchain.toml` and `host/`.
pub fn repo() -> PathBuf {
    let package = package_dir();
    package
        .ancestors()
        .find(|dir| dir.join("rust-toolchain.toml").is_file() && dir.join("host").is_dir())
        .unwrap_or_else(|| panic!("no checkout above {}", package.display()))
        .to_path_buf()
}

/// Runs a `!Send` future (the SDK's workflow half is) on a thread with a multi-threaded
/// tokio runtime of its own, as the binary runs it on its main thread.
pub fn run_on_own_runtime<F, Fut>(make: F) -> std::thread::JoinHandle<()>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        rt.block_on(make());
    })
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: std::time::Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// `component` with a custom section `name` holding `payload` appended: the same code under
/// another digest (a new version to deploy).
pub fn with_custom_section(component: &[u8], name: &str, payload: &[u8]) -> Vec<u8> {
    use wasm_encoder::Section;
    let mut out = component.to_vec();
    wasm_encoder::CustomSection {
        name: name.into(),
        data: payload.into(),
    }
    .append_to(&mut out);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_custom_section_is_id_zero_then_sizes_name_and_payload() {
        let out = super::with_custom_section(b"\0asm", "ab", b"xyz");
        assert_eq!(out, b"\0asm\x00\x06\x02abxyz");
        let long = super::with_custom_section(b"", "n", &[7; 200]);
        // 1 + 1 + 200 = 202 bytes: two LEB128 bytes.
        assert_eq!(&long[..3], &[0x00, 0xca, 0x01]);
        assert_eq!(long.len(), 3 + 202);
    }
}
