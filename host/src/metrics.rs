//! Prometheus metrics on an opt-in admin listener (`tessera up --metrics ADDR`).
//!
//! Off by default, and then free: every recording site asks [`get`] first, which is one
//! atomic load of an unset `OnceLock`. The registry is process-wide, like a tracing
//! subscriber, so the triggers and the runtime need no extra plumbing to reach it.
//!
//! Served as OpenMetrics text (which Prometheus scrapes) at `GET /metrics`.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::sync::Semaphore;

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The metrics, if `--metrics` turned them on.
pub fn get() -> Option<&'static Metrics> {
    METRICS.get()
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `-` when no route matched.
    pub component: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ComponentLabel {
    pub component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MessageLabels {
    pub channel: String,
    pub component: String,
    /// `ok` or `failed`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MessageTarget {
    pub channel: String,
    pub component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// `hit` or `miss`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AddressLabel {
    pub address: String,
}

/// Every metric Tessera exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<ComponentLabel, Histogram>,
    messages: Family<MessageLabels, Counter>,
    message_lag_seconds: Family<MessageTarget, Histogram>,
    instances_in_use: Gauge,
    instances_limit: Gauge,
    compile_cache: Family<CacheLabels, Counter>,
    redis_reconnects: Family<AddressLabel, Counter>,
    /// The instance pool, read when scraped.
    instances: OnceLock<(Arc<Semaphore>, u32)>,
}

fn latency_histogram() -> Histogram {
    // 50 µs … ~13 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 19))
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tessera");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by component and status",
            requests.clone(),
        );
        let request_seconds = Family::<ComponentLabel, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its response head",
            request_seconds.clone(),
        );
        let messages = Family::<MessageLabels, Counter>::default();
        registry.register(
            "redis_messages",
            "Redis messages handled, by channel, component and outcome",
            messages.clone(),
        );
        let message_lag_seconds = Family::<MessageTarget, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "redis_message_lag_seconds",
            "Time from a Redis message's arrival to its handler's end (waiting for an instance included)",
            message_lag_seconds.clone(),
        );
        let instances_in_use = Gauge::default();
        registry.register(
            "instances_in_use",
            "Component instances alive now",
            instances_in_use.clone(),
        );
        let instances_limit = Gauge::default();
        registry.register(
            "instances_limit",
            "Most component instances alive at once (--max-instances)",
            instances_limit.clone(),
        );
        let compile_cache = Family::<CacheLabels, Counter>::default();
        registry.register(
            "compile_cache_lookups",
            "Components loaded from the compile cache (hit) or compiled (miss)",
            compile_cache.clone(),
        );
        let redis_reconnects = Family::<AddressLabel, Counter>::default();
        registry.register(
            "redis_reconnects",
            "Times a Redis trigger subscribed again after losing its connection",
            redis_reconnects.clone(),
        );
        Metrics {
            registry,
            requests,
            request_seconds,
            messages,
            message_lag_seconds,
            instances_in_use,
            instances_limit,
            compile_cache,
            redis_reconnects,
            instances: OnceLock::new(),
        }
    }

    pub fn request(&self, component: &str, status: u16, took: Duration) {
        let component = component.to_owned();
        self.requests
            .get_or_create(&RequestLabels {
                component: component.clone(),
                status,
            })
            .inc();
        self.request_seconds
            .get_or_create(&ComponentLabel { component })
            .observe(took.as_secs_f64());
    }

    pub fn message(&self, channel: &str, component: &str, ok: bool, lag: Duration) {
        self.messages
            .get_or_create(&MessageLabels {
                channel: channel.to_owned(),
                component: component.to_owned(),
                outcome: if ok { "ok" } else { "failed" },
            })
            .inc();
        self.message_lag_seconds
            .get_or_create(&MessageTarget {
                channel: channel.to_owned(),
                component: component.to_owned(),
            })
            .observe(lag.as_secs_f64());
    }

    pub fn compile_cache(&self, hit: bool) {
        self.compile_cache
            .get_or_create(&CacheLabels {
                outcome: if hit { "hit" } else { "miss" },
            })
            .inc();
    }

    pub fn redis_reconnect(&self, address: &str) {
        self.redis_reconnects
            .get_or_create(&AddressLabel {
                address: address.to_owned(),
            })
            .inc();
    }

    /// Watches the instance pool: `limit` permits of `pool`.
    pub fn watch_instances(&self, pool: Arc<Semaphore>, limit: u32) {
        self.instances_limit.set(i64::from(limit));
        let _ = self.instances.set((pool, limit));
    }

    /// The OpenMetrics text of every metric, as of now.
    pub fn render(&self) -> String {
        if let Some((pool, limit)) = self.instances.get() {
            let free = pool.available_permits() as i64;
            self.instances_in_use.set(i64::from(*limit) - free);
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Turns metrics on and serves them on `addr`; returns the bound address.
pub async fn serve(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("--metrics {addr}: cannot listen: {e}"))?;
    let bound = listener.local_addr()?;
    let metrics = METRICS.get_or_init(Metrics::new);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let service = hyper::service::service_fn(move |req: http::Request<_>| async move {
                Ok::<_, std::convert::Infallible>(answer(metrics, req.uri().path()))
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    Ok(bound)
}

fn answer(metrics: &Metrics, path: &str) -> Response<Full<Bytes>> {
    let (status, content_type, body) = if path == "/metrics" {
        (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.render(),
        )
    } else {
        (
            StatusCode::NOT_FOUND,
            "text/plain",
            "metrics are at /metrics\n".to_owned(),
        )
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}
