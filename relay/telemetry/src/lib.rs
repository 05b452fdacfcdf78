//! # relay-telemetry
//!
//! Optional distributed tracing for every shs-relay process (the relay and the
//! provider adapters): the `[tracing]` configuration section, a
//! `tracing-opentelemetry` layer that exports spans over OTLP (gRPC or
//! HTTP/protobuf) when that section is present, and the W3C trace context
//! (`traceparent`) carried in gRPC metadata from the relay to the adapters.
//!
//! When a process has no `[tracing]` section nothing here is installed: spans
//! stay ordinary `tracing` spans that only the log layer sees, and no
//! `traceparent` is sent.
//!
//! What is exported is deliberately narrow: only **spans** (never log events)
//! whose target is one of the crates the process names (the relay's own code,
//! the SDK's own code), at `INFO` or above. Those spans are written so that
//! their attributes carry no personal data: transaction ids, provider ids,
//! routes, outcomes and latencies, never a personnummer, a name or a payload.
//! Events are kept out because an event's fields are not reviewed for that
//! guarantee the way span fields are.
//!
//! Not for: metrics (Prometheus, in each process) or logs (JSON to stderr or a
//! file).

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter,
};
use serde::Deserialize;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// The `[tracing]` section: where to export spans and how many.
///
/// ```toml
/// [tracing]
/// otlp_endpoint = "http://127.0.0.1:4317"   # an OTLP collector
/// protocol = "grpc"                         # or "http/protobuf" (port 4318 by convention)
/// service_name = "shs-relay"                # default: the process's own name
/// sample_ratio = 1.0                        # share of new traces kept, 0.0 to 1.0
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingConfig {
    /// `http://host:port` of the collector (gRPC), or its base URL for
    /// HTTP/protobuf (`/v1/traces` is appended unless the URL already ends so).
    pub otlp_endpoint: String,
    #[serde(default)]
    pub protocol: Protocol,
    /// `service.name` of the exported spans.
    #[serde(default)]
    pub service_name: Option<String>,
    /// Share of new traces recorded and exported. A trace the caller started
    /// (an incoming `traceparent`) follows the caller's decision.
    #[serde(default = "full_sampling")]
    pub sample_ratio: f64,
}

fn full_sampling() -> f64 {
    1.0
}

/// The OTLP transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Protocol {
    #[default]
    #[serde(rename = "grpc")]
    Grpc,
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

impl TracingConfig {
    /// Checks the section; the error names the key (relative to `[tracing]`).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let uri: http::Uri = self
            .otlp_endpoint
            .parse()
            .map_err(|e| ("otlp_endpoint", format!("not a URL: {e}")))?;
        if !matches!(uri.scheme_str(), Some("http") | Some("https")) || uri.host().is_none() {
            return Err(("otlp_endpoint", "must be http(s)://host:port".into()));
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(("sample_ratio", "must be between 0.0 and 1.0".into()));
        }
        if self.service_name.as_deref().is_some_and(str::is_empty) {
            return Err(("service_name", "must not be empty".into()));
        }
        Ok(())
    }
}

/// Why export could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("tracing: {0}")]
    Config(String),
    #[error("tracing: the OTLP exporter: {0}")]
    Exporter(String),
}

/// The running exporter. Call [`Exporting::shutdown`] before the process exits
/// so that the last spans are sent.
#[derive(Debug, Clone)]
pub struct Exporting {
    provider: SdkTracerProvider,
}

impl Exporting {
    /// Sends what is queued and stops the exporter, within a few seconds
    /// even when the collector does not answer. Blocking: call it off the async
    /// runtime's worker threads.
    pub fn shutdown(&self) {
        let _ = self.provider.shutdown_with_timeout(Duration::from_secs(5));
    }

    /// As [`Exporting::shutdown`], from async code.
    pub async fn shutdown_async(&self) {
        let me = self.clone();
        let _ = tokio::task::spawn_blocking(move || me.shutdown()).await;
    }
}

/// A boxed layer for a subscriber `S`.
pub type BoxedLayer<S> = Box<dyn Layer<S> + Send + Sync + 'static>;

/// Builds the export layer and its exporter. Must be called inside a Tokio
/// runtime, which then carries the exports.
///
/// `default_service` is the `service.name` when the section names none;
/// `targets` are the span targets exported (crate names, e.g. `relay_server`):
/// spans of other crates, and all events, stay local.
pub fn layer<S>(
    config: &TracingConfig,
    default_service: &str,
    targets: &'static [&'static str],
) -> Result<(BoxedLayer<S>, Exporting), TelemetryError>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    config
        .check()
        .map_err(|(key, reason)| TelemetryError::Config(format!("{key}: {reason}")))?;
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| TelemetryError::Exporter("must be set up inside the async runtime".into()))?;
    let exporter = match config.protocol {
        Protocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(config.otlp_endpoint.clone())
            .with_timeout(Duration::from_secs(10))
            .build(),
        Protocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(http_traces_url(&config.otlp_endpoint))
            .with_timeout(Duration::from_secs(10))
            .build(),
    }
    .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let exporter = OnRuntime {
        inner: Arc::new(exporter),
        handle,
    };
    let service = config
        .service_name
        .clone()
        .unwrap_or_else(|| default_service.to_owned());
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter).build())
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            config.sample_ratio,
        ))))
        .with_resource(Resource::builder().with_service_name(service).build())
        .build();
    let tracer = provider.tracer("shs-relay");
    let only_our_spans = tracing_subscriber::filter::filter_fn(move |meta| {
        meta.is_span()
            && *meta.level() <= tracing::Level::INFO
            && targets.iter().any(|t| {
                meta.target() == *t
                    || meta
                        .target()
                        .strip_prefix(t)
                        .is_some_and(|rest| rest.starts_with("::"))
            })
    });
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_threads(false)
        .with_filter(only_our_spans);
    Ok((Box::new(layer), Exporting { provider }))
}

/// Where and how a process logs.
pub struct LogOutput {
    pub writer: tracing_subscriber::fmt::writer::BoxMakeWriter,
    /// JSON lines (one object per event) or human-readable text.
    pub json: bool,
}

/// Installs the process's global subscriber: the log (level from `RUST_LOG`,
/// default `info`) and, when `tracing` is given, span export (see [`layer`]).
/// Returns the exporter to shut down at exit. A second call in one process
/// (tests) leaves the first subscriber in place and returns `Ok(None)`.
pub fn init(
    log: LogOutput,
    tracing: Option<&TracingConfig>,
    default_service: &str,
    targets: &'static [&'static str],
) -> Result<Option<Exporting>, TelemetryError> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    type Registry = tracing_subscriber::Registry;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(log.writer);
    // Log lines stay as they were before spans existed: the span context is
    // not repeated in every JSON line. So the JSON log does not see spans at
    // all: otherwise it formats every span's fields as JSON when the span is
    // made and parses and writes them again on every `record` (about 8 % of
    // the relay's CPU per SSBTEK query, docs/performance.md), only to never
    // print them.
    let fmt: BoxedLayer<Registry> = if log.json {
        use tracing_subscriber::filter::FilterExt;
        let events_only = tracing_subscriber::filter::filter_fn(|m| m.is_event());
        fmt.json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_filter(filter.and(events_only))
            .boxed()
    } else {
        fmt.with_filter(filter).boxed()
    };
    let mut layers = vec![fmt];
    let mut exporting = None;
    if let Some(cfg) = tracing {
        let (otel, e) = layer::<Registry>(cfg, default_service, targets)?;
        layers.push(otel);
        exporting = Some(e);
    }
    if tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .is_err()
        && let Some(e) = exporting.take()
    {
        let _ = e.provider.shutdown();
    }
    Ok(exporting)
}

/// The `/v1/traces` URL of an HTTP/protobuf collector.
fn http_traces_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    }
}

/// Runs every export on the Tokio runtime: the batch processor exports from
/// its own thread, and both OTLP transports need a runtime's reactor and timers.
#[derive(Debug)]
struct OnRuntime {
    inner: Arc<opentelemetry_otlp::SpanExporter>,
    handle: tokio::runtime::Handle,
}

impl SpanExporter for OnRuntime {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let inner = self.inner.clone();
        let task = self.handle.spawn(async move { inner.export(batch).await });
        async move {
            task.await
                .unwrap_or_else(|e| Err(OTelSdkError::InternalFailure(e.to_string())))
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        // Called while the provider is built, before any export shares `inner`.
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.set_resource(resource);
        }
    }
}

/// A transaction id as a span attribute. SHS transaction ids are UUIDs; any
/// other text a caller wrote there is not exported, since it could hold
/// anything, personal data included.
pub fn tx_attribute(tx_id: &str) -> &str {
    let b = tx_id.as_bytes();
    let uuid_shaped = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    if uuid_shaped { tx_id } else { "(not a uuid)" }
}

/// Writes `span`'s trace context into gRPC request metadata as a W3C
/// `traceparent` (and `tracestate` when there is one). Writes nothing when the
/// span is not exported (no `[tracing]` section, or not sampled in).
pub fn inject(span: &tracing::Span, metadata: &mut tonic::metadata::MetadataMap) {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return;
    }
    TraceContextPropagator::new().inject_context(&cx, &mut MetadataInjector(metadata));
}

/// Makes `span` a child of the trace context in incoming gRPC metadata (a W3C
/// `traceparent`), when there is a valid one. Call before `span` is entered.
pub fn continue_trace(metadata: &tonic::metadata::MetadataMap, span: &tracing::Span) {
    let cx = TraceContextPropagator::new().extract(&MetadataExtractor(metadata));
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// The trace id of `span` as 32 lower-case hex digits, when it is exported.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(k, v);
        }
    }
}

struct MetadataExtractor<'a>(&'a tonic::metadata::MetadataMap);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|k| match k {
                tonic::metadata::KeyRef::Ascii(k) => Some(k.as_str()),
                tonic::metadata::KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Result<TracingConfig, String> {
        let c: TracingConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.check().map_err(|(k, r)| format!("{k}: {r}"))?;
        Ok(c)
    }

    #[test]
    fn a_minimal_section_samples_everything_over_grpc() {
        let c = config("otlp_endpoint = \"http://127.0.0.1:4317\"").unwrap();
        assert_eq!(c.protocol, Protocol::Grpc);
        assert_eq!(c.sample_ratio, 1.0);
        assert_eq!(c.service_name, None);
        let c = config(
            "otlp_endpoint = \"http://collector:4318\"\nprotocol = \"http/protobuf\"\nsample_ratio = 0.25\nservice_name = \"relay-a\"",
        )
        .unwrap();
        assert_eq!(c.protocol, Protocol::HttpProtobuf);
        assert_eq!(c.sample_ratio, 0.25);
    }

    #[test]
    fn bad_sections_name_the_key() {
        for (text, key) in [
            ("otlp_endpoint = \"127.0.0.1:4317\"", "otlp_endpoint"),
            ("otlp_endpoint = \"ftp://x:1\"", "otlp_endpoint"),
            (
                "otlp_endpoint = \"http://x:1\"\nsample_ratio = 1.5",
                "sample_ratio",
            ),
            (
                "otlp_endpoint = \"http://x:1\"\nservice_name = \"\"",
                "service_name",
            ),
            ("otlp_endpoint = \"http://x:1\"\nprotocol = \"udp\"", "udp"),
        ] {
            let e = config(text).unwrap_err();
            assert!(e.contains(key), "expected {key} in: {e}");
        }
    }

    #[test]
    fn the_http_path_is_appended_once() {
        assert_eq!(http_traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(
            http_traces_url("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces"
        );
    }

    #[test]
    fn only_uuid_shaped_transaction_ids_are_exported() {
        let tx = "6f1c3b57-4f0a-4e0e-9a59-55b7e5a0c0d1";
        assert_eq!(tx_attribute(tx), tx);
        for other in [
            "19121212-1212",
            "191212121212",
            "",
            "x",
            "6f1c3b57-4f0a-4e0e-9a59-55b7e5a0c0d1x",
        ] {
            assert_eq!(tx_attribute(other), "(not a uuid)");
        }
    }

    #[test]
    fn a_span_without_export_injects_nothing() {
        let mut md = tonic::metadata::MetadataMap::new();
        inject(&tracing::info_span!("x"), &mut md);
        assert!(md.get("traceparent").is_none());
    }

    #[test]
    fn an_exported_span_round_trips_through_metadata() {
        use tracing_subscriber::layer::SubscriberExt;
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let caller = tracing::info_span!("caller");
            let mut md = tonic::metadata::MetadataMap::new();
            inject(&caller, &mut md);
            let tp = md.get("traceparent").unwrap().to_str().unwrap().to_owned();
            let parts: Vec<&str> = tp.split('-').collect();
            assert_eq!(parts.len(), 4, "{tp}");
            assert_eq!(parts[0], "00");
            assert_eq!(parts[1].len(), 32);
            assert_eq!(parts[2].len(), 16);
            assert_eq!(parts[3], "01", "sampled");
            assert_eq!(Some(parts[1].to_owned()), trace_id(&caller));

            let callee = tracing::info_span!("callee");
            continue_trace(&md, &callee);
            assert_eq!(trace_id(&callee), trace_id(&caller));

            let garbage = tonic::metadata::MetadataMap::from_headers(
                [(
                    http::header::HeaderName::from_static("traceparent"),
                    http::HeaderValue::from_static("00-zz-1-01"),
                )]
                .into_iter()
                .collect(),
            );
            let fresh = tracing::info_span!("fresh");
            continue_trace(&garbage, &fresh);
            assert_ne!(trace_id(&fresh), trace_id(&caller));
        });
    }
}
