//! Shared test helpers: the real Temporal dev server started on free ports with a
//! throw-away database, and a local HTTP sink that records requests.

mod dev_server;
mod http_sink;

pub use dev_server::{free_port, temporal_cli, DevServer, DevServerError};
pub use http_sink::{HttpSink, Received};

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
