//! Logs (text or JSON lines, through `tracing`) and, when `telemetry.otlp_endpoint` is set,
//! the same spans exported as OpenTelemetry traces over OTLP/HTTP (protobuf).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::fmt::writer::EitherWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, TelemetryConfig};

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built.
    #[error("telemetry.otlp_endpoint: {0}")]
    Exporter(String),
}

/// Keeps the trace pipeline alive; [`Telemetry::shutdown`] flushes what is buffered.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still buffered and stops the exporter.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            if let Err(e) = provider.shutdown() {
                eprintln!("telemetry: flushing traces failed: {e}");
            }
        }
    }
}

/// The exporter's HTTP client: hyper, run on the host's tokio runtime. The SDK's batch
/// processor exports from a thread of its own, where hyper would find no runtime.
#[derive(Debug)]
struct OnRuntime {
    inner: std::sync::Arc<opentelemetry_http::hyper::HyperClient>,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OnRuntime {
    async fn send_bytes(
        &self,
        request: opentelemetry_http::Request<opentelemetry_http::Bytes>,
    ) -> Result<
        opentelemetry_http::Response<opentelemetry_http::Bytes>,
        opentelemetry_http::HttpError,
    > {
        let inner = self.inner.clone();
        self.runtime
            .spawn(async move { inner.send_bytes(request).await })
            .await?
    }
}

/// Installs the global subscriber: `RUST_LOG` (else `telemetry.log_level`) filters, lines in
/// `telemetry.log_format` on stdout (or stderr, for client commands), and an OpenTelemetry
/// layer when an endpoint is configured.
pub fn init(config: &TelemetryConfig, to_stderr: bool) -> Result<Telemetry, TelemetryError> {
    let filter =
        || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log_level));
    let writer = move || {
        if to_stderr {
            EitherWriter::B(std::io::stderr())
        } else {
            EitherWriter::A(std::io::stdout())
        }
    };
    let logs = match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer().with_writer(writer).boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
    };
    let provider = match &config.otlp_endpoint {
        Some(endpoint) => {
            let client = OnRuntime {
                inner: std::sync::Arc::new(
                    opentelemetry_http::hyper::HyperClient::with_default_connector(
                        std::time::Duration::from_secs(10),
                        None,
                    ),
                ),
                runtime: tokio::runtime::Handle::try_current()
                    .map_err(|e| TelemetryError::Exporter(e.to_string()))?,
            };
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_http_client(client)
                .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
                .build()
                .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(
                        Resource::builder()
                            .with_service_name(config.service_name.clone())
                            .build(),
                    )
                    .build(),
            )
        }
        None => None,
    };
    let traces = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("activity-host"))
            .with_filter(filter())
    });
    tracing_subscriber::registry()
        .with(logs.with_filter(filter()))
        .with(traces)
        .init();
    Ok(Telemetry { provider })
}
