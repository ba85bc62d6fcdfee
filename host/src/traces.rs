//! OpenTelemetry traces, opt-in as in Spin: with `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, spans are exported with OTLP over
//! HTTP/protobuf; unset, no span is ever built (one `OnceLock` read per request).
//!
//! The spans:
//! - `SERVER`, one per HTTP request routed to a component: `{component} {METHOD} {route}`;
//! - `CONSUMER`, one per Redis message and subscribed component:
//!   `{component} process {channel}`;
//! - `CLIENT` children of either, one per host call that can be slow: a sqlite
//!   statement, an outbound HTTP request, a Redis command.
//!
//! The context travels as W3C `traceparent`. Over HTTP: a valid inbound header is the
//! server span's parent, the guest sees the header set to the server span, and its
//! outbound requests carry their client span's. Across the bus (beyond Spin): an event's
//! CloudEvents `traceparent` attribute is the consumer span's parent, and the guest gets
//! the event with that attribute set to its consumer span, so the events it publishes
//! while handling it are the consumer span's children (`wit/README.md`).

use std::sync::OnceLock;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

/// The environment variables that turn tracing on (OpenTelemetry's standard names).
const ENDPOINT_VARIABLES: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

static TRACING: OnceLock<Tracing> = OnceLock::new();

/// Starts exporting if an OTLP endpoint is configured. Call before any async runtime
/// starts: the exporter's blocking HTTP client must not be created or dropped on one.
pub fn init() -> anyhow::Result<()> {
    let configured = ENDPOINT_VARIABLES
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
    if !configured || std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v == "true") {
        return Ok(());
    }
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    // The HTTP client is reqwest without a bundled crypto provider (as for registries);
    // ring is already in the tree. Needed for an `https://` collector.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Reads the endpoint, headers and timeout from the standard environment variables.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build()
        .map_err(|e| anyhow::anyhow!("cannot set up the OTLP trace exporter: {e}"))?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("tessera");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("tessera");
    let _ = TRACING.set(Tracing { provider, tracer });
    Ok(())
}

/// Exports the spans still buffered; call after the async runtime has stopped.
pub fn shutdown() {
    if let Some(tracing) = TRACING.get()
        && let Err(e) = tracing.provider.shutdown()
    {
        eprintln!("Warning: could not export the last traces: {e}");
    }
}

fn tracer() -> Option<&'static SdkTracer> {
    TRACING.get().map(|t| &t.tracer)
}

/// The span of one request or message: the parent of its host calls, and the context
/// the guest continues. Ends when the last clone is dropped, or at [`Trace::end`].
#[derive(Clone)]
pub struct Trace {
    cx: Context,
}

impl Trace {
    /// The server span of an HTTP request to `component`, continuing the request's
    /// `traceparent` when it is valid. `None` when tracing is off.
    pub fn http_request(
        component: &str,
        method: &http::Method,
        route: &str,
        path: &str,
        headers: &http::HeaderMap,
    ) -> Option<Trace> {
        let tracer = tracer()?;
        let parent =
            TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers));
        let span = tracer
            .span_builder(format!("{component} {method} {route}"))
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("spin.component.id", component.to_owned()),
                KeyValue::new("http.request.method", method.as_str().to_owned()),
                KeyValue::new("http.route", route.to_owned()),
                KeyValue::new("url.path", path.to_owned()),
            ])
            .start_with_context(tracer, &parent);
        Some(Trace {
            cx: parent.with_span(span),
        })
    }

    /// The consumer span of a Redis message for `component`. Its parent is the event's
    /// `traceparent` when the payload has a valid one, which is then replaced by this
    /// span's own, so that what the guest publishes continues from here. `None` (and
    /// the payload untouched) when tracing is off.
    pub fn redis_message(component: &str, channel: &str, payload: &mut Vec<u8>) -> Option<Trace> {
        let tracer = tracer()?;
        let event = EventContext::of(payload);
        let parent = match &event.traceparent {
            Some(value) => TraceContextPropagator::new().extract(&OneHeader(value)),
            None => Context::new(),
        };
        let mut attributes = vec![
            KeyValue::new("spin.component.id", component.to_owned()),
            KeyValue::new("messaging.system", "redis"),
            KeyValue::new("messaging.operation.type", "process"),
            KeyValue::new("messaging.destination.name", channel.to_owned()),
        ];
        if let Some(id) = event.id {
            attributes.push(KeyValue::new("messaging.message.id", id));
        }
        let span = tracer
            .span_builder(format!("{component} process {channel}"))
            .with_kind(SpanKind::Consumer)
            .with_attributes(attributes)
            .start_with_context(tracer, &parent);
        let trace = Trace {
            cx: parent.with_span(span),
        };
        if let Some(old) = &event.traceparent
            && parent.span().span_context().is_valid()
        {
            replace_traceparent(payload, old, &trace.traceparent());
        }
        Some(trace)
    }

    /// Whether this span is recorded (sampled). Host calls under one that is not get no
    /// span of their own, and their attributes are never built ([`host_call`]).
    fn is_recording(&self) -> bool {
        self.cx.span().is_recording()
    }

    /// The context this span continues, for propagation.
    pub fn context(&self) -> &Context {
        &self.cx
    }

    /// This span's context as a W3C `traceparent` value.
    pub fn traceparent(&self) -> String {
        let span = self.cx.span();
        let context = span.span_context();
        format!(
            "00-{}-{}-{:02x}",
            context.trace_id(),
            context.span_id(),
            context.trace_flags().to_u8()
        )
    }

    /// Sets this span's `traceparent` (and `tracestate`, if any) on `headers`.
    pub fn inject(&self, headers: &mut http::HeaderMap) {
        TraceContextPropagator::new()
            .inject_context(&self.cx, &mut opentelemetry_http::HeaderInjector(headers));
    }

    /// Records an attribute on this span.
    pub fn set_attribute(&self, attribute: KeyValue) {
        self.cx.span().set_attribute(attribute);
    }

    /// Ends the span, as failed with `error` when there is one.
    pub fn end(self, error: Option<&str>) {
        let span = self.cx.span();
        if let Some(error) = error {
            span.set_status(Status::error(error.to_owned()));
        }
        span.end();
    }
}

/// The span of one host call; ends when dropped.
pub struct HostCall(Option<opentelemetry_sdk::trace::Span>);

impl HostCall {
    /// No span (tracing off, or no request span to be the parent).
    pub const NONE: HostCall = HostCall(None);

    /// Marks the call failed.
    pub fn fail(&mut self, error: impl std::fmt::Display) {
        if let Some(span) = &mut self.0 {
            span.set_status(Status::error(error.to_string()));
        }
    }

    /// Records an attribute learnt during the call.
    pub fn set_attribute(&mut self, attribute: KeyValue) {
        if let Some(span) = &mut self.0 {
            span.set_attribute(attribute);
        }
    }

    /// The call's own context (for outbound requests' `traceparent`), if it has a span.
    pub fn context(&self) -> Option<Context> {
        let span = self.0.as_ref()?;
        Some(Context::new().with_remote_span_context(span.span_context().clone()))
    }
}

/// A child span of `trace` for one host call, named and described by `describe`, which
/// runs only when there is a recorded span to be the parent (tracing on, sampled).
pub fn host_call(
    trace: Option<&Trace>,
    describe: impl FnOnce() -> (String, Vec<KeyValue>),
) -> HostCall {
    let (Some(trace), Some(tracer)) = (trace.filter(|t| t.is_recording()), tracer()) else {
        return HostCall::NONE;
    };
    let (name, attributes) = describe();
    let span = tracer
        .span_builder(name)
        .with_kind(SpanKind::Client)
        .with_attributes(attributes)
        .start_with_context(tracer, &trace.cx);
    HostCall(Some(span))
}

/// Sets `cx`'s `traceparent` on `headers` unless the guest set one itself.
pub fn inject_unless_present(cx: &Context, headers: &mut http::HeaderMap) {
    if !headers.contains_key("traceparent") {
        TraceContextPropagator::new()
            .inject_context(cx, &mut opentelemetry_http::HeaderInjector(headers));
    }
}

/// What a consumer span takes from an event: its CloudEvents `id` and `traceparent`.
/// Anything that is not a JSON object with string values there has neither.
#[derive(Default, serde::Deserialize)]
struct EventContext {
    #[serde(default, deserialize_with = "string_or_none")]
    id: Option<String>,
    #[serde(default, deserialize_with = "string_or_none")]
    traceparent: Option<String>,
}

impl EventContext {
    fn of(payload: &[u8]) -> Self {
        serde_json::from_slice(payload).unwrap_or_default()
    }
}

/// A string attribute, or `None` for any other JSON value.
fn string_or_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value: serde_json::Value = serde::Deserialize::deserialize(d)?;
    Ok(value.as_str().map(str::to_owned))
}

/// A single `traceparent` value, for the propagator.
struct OneHeader<'a>(&'a str);

impl Extractor for OneHeader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == "traceparent").then_some(self.0)
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent"]
    }
}

/// Replaces the JSON string `"old"` in `payload` with `"new"`, once. A traceparent is
/// hex digits and dashes, so it appears unescaped; the 32 random hex digits of its
/// trace id make a match anywhere but the attribute itself practically impossible.
fn replace_traceparent(payload: &mut Vec<u8>, old: &str, new: &str) {
    let needle = format!("\"{old}\"");
    let Some(at) = payload
        .windows(needle.len())
        .position(|window| window == needle.as_bytes())
    else {
        return;
    };
    payload.splice(at + 1..at + 1 + old.len(), new.bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const NEW: &str = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01";

    #[test]
    fn the_event_traceparent_is_replaced_in_place() {
        let original = format!(r#"{{"id":"e1","traceparent":"{OLD}","data":{{"x":1}}}}"#);
        let mut payload = original.into_bytes();
        replace_traceparent(&mut payload, OLD, NEW);
        let expected = format!(r#"{{"id":"e1","traceparent":"{NEW}","data":{{"x":1}}}}"#);
        assert_eq!(std::str::from_utf8(&payload).unwrap(), expected);
    }

    #[test]
    fn a_payload_without_that_value_is_left_alone() {
        let original = br#"{"id":"e1","data":{}}"#.to_vec();
        let mut payload = original.clone();
        replace_traceparent(&mut payload, OLD, NEW);
        assert_eq!(payload, original);
    }

    #[test]
    fn event_context_reads_only_string_attributes_of_json_objects() {
        let event = EventContext::of(format!(r#"{{"id":"e1","traceparent":"{OLD}"}}"#).as_bytes());
        assert_eq!(event.id.as_deref(), Some("e1"));
        assert_eq!(event.traceparent.as_deref(), Some(OLD));
        for payload in [
            &b"expiration:order:o1"[..],
            b"",
            b"[1,2]",
            br#"{"id":7,"traceparent":["x"]}"#,
            b"\xff\xfe",
        ] {
            let event = EventContext::of(payload);
            assert_eq!((event.id, event.traceparent), (None, None), "{payload:?}");
        }
    }

    #[test]
    fn traceparents_are_validated_before_they_become_parents() {
        let propagator = TraceContextPropagator::new();
        let valid = propagator.extract(&OneHeader(OLD));
        assert!(valid.span().span_context().is_valid());
        for bad in [
            "",
            "garbage",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ] {
            let cx = propagator.extract(&OneHeader(bad));
            assert!(!cx.span().span_context().is_valid(), "{bad}");
        }
    }
}
