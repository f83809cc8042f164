//! A local HTTP server (axum) that records the requests it gets and answers a fixed status.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};

/// One request the sink received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// Body as text.
    pub body: String,
}

/// The sink; it serves until the tokio runtime it was started on stops.
pub struct HttpSink {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl HttpSink {
    /// Starts a sink answering `status` to every request.
    pub async fn start(status: u16) -> Self {
        Self::start_redirecting(status, None).await
    }

    /// Starts a sink answering `status` with `Location: location` when given.
    pub async fn start_redirecting(status: u16, location: Option<String>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let status = StatusCode::from_u16(status).expect("an HTTP status");
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let log = log.clone();
                let location = location.clone();
                async move {
                    let headers = headers
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.as_str().to_string(),
                                v.to_str().unwrap_or_default().to_string(),
                            )
                        })
                        .collect();
                    if let Ok(mut l) = log.lock() {
                        l.push(Received {
                            method: method.to_string(),
                            path: uri
                                .path_and_query()
                                .map(|p| p.to_string())
                                .unwrap_or_default(),
                            headers,
                            body: String::from_utf8_lossy(&body).to_string(),
                        });
                    }
                    let mut answer = axum::http::Response::builder().status(status);
                    if let Some(l) = location {
                        answer = answer.header(axum::http::header::LOCATION, l);
                    }
                    answer
                        .body(axum::body::Body::empty())
                        .expect("a valid answer")
                }
            },
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, received }
    }

    /// `http://addr/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }
}
