//! A registry that lies, served here on a free port: the pull stops where the lie shows,
//! holding no more than the layer's descriptor declared, and what the registry says back is
//! clipped before a caller sees it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use activity_oci::{
    sha256_digest, ArtifactRef, OciClient, OciError, CONFIG_MEDIA_TYPE, LAYER_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
};
use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::StreamExt;

/// What the layer's descriptor declares.
const DECLARED: usize = 1_000;
/// What the blob route streams instead.
const STREAMED: u64 = 256 << 20;
const CHUNK: usize = 64 << 10;

fn manifest() -> Vec<u8> {
    let layer = vec![0u8; DECLARED];
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": sha256_digest(b"{}"), "size": 2},
        "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": sha256_digest(&layer), "size": DECLARED}],
    }))
    .unwrap()
}

/// The registry on a free loopback port, and the bytes its blob route has produced.
async fn serve() -> (String, Arc<AtomicU64>) {
    let served = Arc::new(AtomicU64::new(0));
    let counter = served.clone();
    let blob = move || {
        let counter = counter.clone();
        async move {
            let chunks = futures::stream::iter(0..STREAMED / CHUNK as u64).map(move |_| {
                counter.fetch_add(CHUNK as u64, Ordering::Relaxed);
                Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0u8; CHUNK]))
            });
            Body::from_stream(chunks)
        }
    };
    let manifests = |Path((_, tag)): Path<(String, String)>| async move {
        match tag.as_str() {
            "liar" => ([(header::CONTENT_TYPE, MANIFEST_MEDIA_TYPE)], manifest()).into_response(),
            // A chatty failure: a megabyte of the registry's own words, control bytes in them.
            _ => Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .body(Body::from("\u{1b}[2J".repeat(1 << 18)))
                .unwrap(),
        }
    };
    let app = Router::new()
        .route("/v2/", get(|| async { "{}" }))
        .route("/v2/{repo}/manifests/{tag}", get(manifests))
        .route("/v2/{repo}/blobs/{digest}", get(blob));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("127.0.0.1:{}", address.port()), served)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_layer_longer_than_declared_is_cut_off_not_buffered() {
    let (registry, served) = serve().await;
    let client = OciClient::new(Default::default());
    let reference = ArtifactRef::parse(&format!("oci://{registry}/hostile:liar")).unwrap();
    let err = client.pull(&reference, 50 << 20).await.unwrap_err();
    assert!(
        matches!(&err, OciError::DigestMismatch(m) if m.contains("1000 bytes")),
        "{err}"
    );
    // Socket buffers hold a few MiB at most; the rest was never produced.
    let produced = served.load(Ordering::Relaxed);
    assert!(
        produced < 32 << 20,
        "the registry produced {produced} of {STREAMED} bytes before the pull stopped"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registrys_error_body_is_clipped_before_a_caller_sees_it() {
    let (registry, _) = serve().await;
    let client = OciClient::new(Default::default());
    let reference = ArtifactRef::parse(&format!("oci://{registry}/hostile:chatty")).unwrap();
    let message = client
        .pull(&reference, 50 << 20)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.len() < 1_000,
        "{} bytes: {message:.300}",
        message.len()
    );
    assert!(!message.contains('\u{1b}'), "{message:.300}");
}
