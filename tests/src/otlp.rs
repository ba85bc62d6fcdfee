//! A real OTLP/HTTP trace receiver on a free loopback port: it accepts what an
//! OpenTelemetry exporter POSTs to `/v1/traces` (protobuf), decodes it with the
//! protocol's generated types, and keeps every span for the test to look at.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;

/// One received span, flattened to what tests assert on.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// Lower-case hex, 32 digits.
    pub trace_id: String,
    /// Lower-case hex, 16 digits.
    pub span_id: String,
    /// The parent's span id, `None` for a root span.
    pub parent_span_id: Option<String>,
    pub name: String,
    /// `SERVER`, `CONSUMER`, `CLIENT`, … (the protocol's names without `SPAN_KIND_`).
    pub kind: String,
    /// String, integer and boolean attributes, as strings.
    pub attributes: HashMap<String, String>,
    /// `service.name` of the resource that sent it.
    pub service: String,
    /// Whether its status is an error.
    pub failed: bool,
    /// When it started and ended, Unix nanoseconds.
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
}

impl ReceivedSpan {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    /// The W3C `traceparent` of this span (sampled).
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.span_id)
    }
}

/// The receiver; stops when dropped.
pub struct OtlpReceiver {
    /// Its base URL, `http://127.0.0.1:PORT`.
    endpoint: String,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    /// Bodies that were not a valid export request (a test failure if any).
    rejected: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl OtlpReceiver {
    pub async fn start() -> OtlpReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the OTLP receiver");
        let addr: SocketAddr = listener.local_addr().expect("receiver address");
        let spans = Arc::new(Mutex::new(Vec::new()));
        let rejected = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(accept(listener, spans.clone(), rejected.clone()));
        OtlpReceiver {
            endpoint: format!("http://{addr}"),
            spans,
            rejected,
            task,
        }
    }

    /// The base URL for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Environment for a `tessera` process exporting here, quickly; extend it with the
    /// process's own.
    pub fn env(&self) -> Vec<(&str, &str)> {
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &self.endpoint),
            // Export every 100 ms instead of every 5 s.
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ]
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        let rejected = self.rejected.lock().unwrap_or_else(|e| e.into_inner());
        assert!(rejected.is_empty(), "malformed OTLP exports: {rejected:?}");
        self.spans.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The spans of `trace_id` received so far.
    pub fn trace(&self, trace_id: &str) -> Vec<ReceivedSpan> {
        self.spans()
            .into_iter()
            .filter(|s| s.trace_id == trace_id)
            .collect()
    }

    /// Polls until `done` holds for the spans received, or panics after `deadline`
    /// with `what` and every span received.
    pub async fn wait_for(
        &self,
        what: &str,
        deadline: Duration,
        done: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let start = Instant::now();
        loop {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            if start.elapsed() > deadline {
                let listing: Vec<String> = spans.iter().map(describe).collect();
                panic!(
                    "waited {deadline:?} for {what}; received {} spans:\n{}",
                    spans.len(),
                    listing.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One line per span, for failure messages.
pub fn describe(span: &ReceivedSpan) -> String {
    format!(
        "{} {} parent={} {} [{}] {:?}",
        span.trace_id,
        span.span_id,
        span.parent_span_id.as_deref().unwrap_or("-"),
        span.kind,
        span.name,
        span.attributes
    )
}

async fn accept(
    listener: tokio::net::TcpListener,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    rejected: Arc<Mutex<Vec<String>>>,
) {
    while let Ok((stream, _)) = listener.accept().await {
        let spans = spans.clone();
        let rejected = rejected.clone();
        let service = hyper::service::service_fn(move |req| {
            let spans = spans.clone();
            let rejected = rejected.clone();
            async move {
                let path = req.uri().path().to_owned();
                let body = collect(req.into_body()).await;
                let status = match ExportTraceServiceRequest::decode(body.as_slice()) {
                    Ok(export) if path == "/v1/traces" => {
                        let mut spans = spans.lock().unwrap_or_else(|e| e.into_inner());
                        spans.extend(flatten(export));
                        200
                    }
                    Ok(_) => 404,
                    Err(e) => {
                        let mut rejected = rejected.lock().unwrap_or_else(|e| e.into_inner());
                        rejected.push(format!("{path}: {e}"));
                        400
                    }
                };
                let response = hyper::Response::builder()
                    .status(status)
                    .header("content-type", "application/x-protobuf")
                    .body(http_body_util::Full::new(hyper::body::Bytes::new()))
                    .expect("a static response");
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

fn flatten(export: ExportTraceServiceRequest) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for resource_spans in export.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| attributes(r.attributes))
            .unwrap_or_default();
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                let kind =
                    opentelemetry_proto::tonic::trace::v1::span::SpanKind::try_from(span.kind)
                        .map_or_else(
                            |_| span.kind.to_string(),
                            |k| k.as_str_name().trim_start_matches("SPAN_KIND_").to_owned(),
                        );
                out.push(ReceivedSpan {
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent_span_id: (!span.parent_span_id.is_empty())
                        .then(|| hex::encode(&span.parent_span_id)),
                    name: span.name,
                    kind,
                    attributes: attributes(span.attributes),
                    service: service.clone(),
                    // STATUS_CODE_ERROR
                    failed: span.status.is_some_and(|s| s.code == 2),
                    start_unix_nanos: span.start_time_unix_nano,
                    end_unix_nanos: span.end_time_unix_nano,
                });
            }
        }
    }
    out
}

fn attributes(
    list: Vec<opentelemetry_proto::tonic::common::v1::KeyValue>,
) -> HashMap<String, String> {
    list.into_iter()
        .filter_map(|kv| {
            let value = match kv.value?.value? {
                AnyValue::StringValue(s) => s,
                AnyValue::IntValue(i) => i.to_string(),
                AnyValue::BoolValue(b) => b.to_string(),
                AnyValue::DoubleValue(d) => d.to_string(),
                _ => return None,
            };
            Some((kv.key, value))
        })
        .collect()
}

/// The whole request body; an unreadable one is empty (and then fails to decode).
async fn collect(body: hyper::body::Incoming) -> Vec<u8> {
    body.collect()
        .await
        .map(|c| c.to_bytes().to_vec())
        .unwrap_or_default()
}
