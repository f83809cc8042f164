//! Helpers shared by the runtime's integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use activity_runtime::{
    ActivityComponent, ActivityFailure, ActivityLimits, ActivitySpec, CallContext, Grants, Runtime,
    RuntimeConfig, SqliteKeyValue,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A runtime with an in-memory key-value store and no compiled cache.
pub fn runtime() -> Runtime {
    let kv = SqliteKeyValue::in_memory().expect("in-memory sqlite");
    Runtime::new(&small_pool())
        .expect("runtime")
        .with_key_value(Arc::new(kv))
}

/// A runtime configuration with a small instance pool: tests run many runtimes at once and
/// each pool reserves address space per slot.
pub fn small_pool() -> RuntimeConfig {
    let mut config = RuntimeConfig::default();
    config.engine.max_instances = 16;
    config
}

/// The reference activities' grants, as `activity-host dev` gives them.
pub fn reference_spec(activity_type: &str) -> ActivitySpec {
    let mut spec = ActivitySpec::new(activity_type);
    if matches!(activity_type, "CreateUser" | "UpdateUser" | "DeleteUser") {
        spec.grants.key_value_stores = vec!["users".into()];
    }
    spec
}

/// Loads a built component as `spec`, panicking with the load error.
pub async fn load(rt: &Runtime, spec: ActivitySpec, path: &str) -> ActivityComponent {
    let bytes = test_components::read(path);
    rt.load(spec, &bytes)
        .await
        .unwrap_or_else(|e| panic!("load {path}: {e}"))
}

/// The misbehaving component imports outgoing HTTP, so it always needs an allowlist; this
/// host name never resolves.
pub const NO_SUCH_HOST: &str = "hosts.invalid";

/// The misbehaving component's spec calling `export` with `grants` and `limits`.
pub fn misbehaving_spec(export: &str, mut grants: Grants, limits: ActivityLimits) -> ActivitySpec {
    if grants.allowed_hosts.is_empty() {
        grants.allowed_hosts.push(NO_SUCH_HOST.into());
    }
    ActivitySpec {
        export: Some(export.into()),
        grants,
        limits,
        ..ActivitySpec::new("Misbehaving")
    }
}

/// Loads the misbehaving component with `grants`, calling export `export`.
pub async fn misbehaving(rt: &Runtime, export: &str, grants: Grants) -> ActivityComponent {
    let spec = misbehaving_spec(export, grants, ActivityLimits::default());
    load(rt, spec, test_components::MISBEHAVING).await
}

/// Calls `activity` with `args`.
pub async fn call(
    rt: &Runtime,
    activity: &ActivityComponent,
    args: Value,
) -> Result<Value, ActivityFailure> {
    let args = args.as_array().expect("args are an array").clone();
    rt.invoke(
        activity,
        &args,
        CallContext::for_type(&activity.spec().activity_type),
    )
    .await
    .map(|i| i.output)
}

/// One HTTP request the sink received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// A local HTTP server that records requests and answers a fixed status.
pub struct HttpSink {
    pub addr: std::net::SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl HttpSink {
    pub async fn start(status: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Ok(n) = sock.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        let Some(end) = text.find("\r\n\r\n") else {
                            continue;
                        };
                        let head = &text[..end];
                        let mut lines = head.lines();
                        let mut first = lines.next().unwrap_or_default().split(' ');
                        let method = first.next().unwrap_or_default().to_string();
                        let path = first.next().unwrap_or_default().to_string();
                        let headers: BTreeMap<String, String> = lines
                            .filter_map(|l| l.split_once(':'))
                            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                            .collect();
                        let len: usize = headers
                            .get("content-length")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        if buf.len() < end + 4 + len {
                            continue;
                        }
                        let body =
                            String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                        log.lock().unwrap().push(Received {
                            method,
                            path,
                            headers,
                            body,
                        });
                        let reply = format!("HTTP/1.1 {status} Sink\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                        let _ = sock.write_all(reply.as_bytes()).await;
                        return;
                    }
                });
            }
        });
        Self { addr, received }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}
