//! The HTTP trigger: accept connections, route each request with Spin's rules, and run
//! it in a fresh instance of the matched component.
//!
//! A failing request (trap, timeout, missing response) becomes a logged 500; the accept
//! loop and every other request carry on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::app::App;
use crate::manifest::ComponentId;
use crate::router::{Route, RouteMatch, Router};
use crate::runtime::{ComponentHandle, Runtime};
use crate::traces::Trace;
use crate::triggers::ready_instance::ReadyInstance;

/// One routable component: its id and its current version (which holds the pre-linked
/// HTTP entry point).
struct HttpComponent {
    id: ComponentId,
    handle: ComponentHandle,
    /// Its next request's instance, instantiated ahead.
    ready: ReadyInstance,
}

pub struct HttpServer {
    runtime: Arc<Runtime>,
    router: Router<Arc<HttpComponent>>,
    /// Bounds instances alive at once to what the pooling allocator can hold.
    instances: Arc<Semaphore>,
    max_body_bytes: usize,
    listen_addr: SocketAddr,
}

impl HttpServer {
    pub fn new(
        app: &App,
        runtime: Arc<Runtime>,
        listen_addr: SocketAddr,
        max_body_bytes: usize,
        instances: Arc<Semaphore>,
    ) -> anyhow::Result<Self> {
        let mut routes = Vec::new();
        let mut entry_points: std::collections::HashMap<ComponentId, Arc<HttpComponent>> =
            Default::default();
        for trigger in &app.http_triggers {
            let target = match entry_points.get(&trigger.component) {
                Some(t) => t.clone(),
                None => {
                    let t = Arc::new(HttpComponent {
                        id: trigger.component.clone(),
                        handle: runtime.component(&trigger.component)?.clone(),
                        ready: ReadyInstance::default(),
                    });
                    entry_points.insert(trigger.component.clone(), t.clone());
                    t
                }
            };
            routes.push((trigger.route.clone(), target));
        }
        let router = Router::new(routes)?;
        Ok(HttpServer {
            runtime,
            router,
            instances,
            max_body_bytes,
            listen_addr,
        })
    }

    /// Lines for the startup banner: each route and the component serving it.
    pub fn describe_routes(&self, base: &str) -> Vec<String> {
        // Routes are unique (the router rejects duplicates), so one line each.
        self.router
            .entries()
            .map(|(route, target)| {
                let wildcard = if route.raw.ends_with("...") {
                    " (wildcard)"
                } else {
                    ""
                };
                let path = route.component_route().trim_start_matches('/');
                format!("  {}: {base}{path}{wildcard}", target.id)
            })
            .collect()
    }

    /// Accepts connections until `shutdown` resolves, then drains open connections.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = &mut shutdown => break,
            };
            let (stream, client) = match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Typically EMFILE: back off briefly instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let server = self.clone();
            let service = hyper::service::service_fn(move |req| {
                let server = server.clone();
                async move { Ok::<_, std::convert::Infallible>(server.handle(req, client).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(30))
                .serve_connection(TokioIo::new(stream), service);
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(%client, "connection closed with error: {e}");
                }
            });
        }
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(std::time::Duration::from_secs(5)) => {
                tracing::warn!("gave up waiting for open connections to finish");
            }
        }
    }

    async fn handle(
        &self,
        req: Request<Incoming>,
        client: SocketAddr,
    ) -> Response<HyperOutgoingBody> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let (response, component) = match self.router.route(&path) {
            // Spin reserves these paths for itself, ahead of any component's route
            // (a `/...` catch-all included); Kubernetes probes use the health check.
            _ if path.starts_with(WELL_KNOWN) => (well_known(&path), None),
            None => (error_response(StatusCode::NOT_FOUND, "Not Found"), None),
            Some((route, target, matched)) => {
                let trace = Trace::http_request(
                    target.id.as_str(),
                    &method,
                    &route.raw,
                    &path,
                    req.headers(),
                );
                let dispatched = self
                    .dispatch(req, client, route, target, matched, trace.clone())
                    .await;
                let response = match dispatched {
                    Ok(response) => response,
                    Err(failure) => failure.into_response(&target.id),
                };
                if let Some(trace) = trace {
                    end_request_span(trace, response.status());
                }
                (response, Some(target.id.clone()))
            }
        };
        let took = started.elapsed();
        let component = component.as_ref().map_or("-", |c| c.as_str());
        let status = response.status().as_u16();
        tracing::info!(
            target: "tessera::request",
            %method,
            %path,
            %component,
            status,
            micros = took.as_micros() as u64,
        );
        if let Some(metrics) = crate::metrics::get() {
            metrics.request(component, status, took);
        }
        response
    }

    async fn dispatch(
        &self,
        req: Request<Incoming>,
        client: SocketAddr,
        route: &Route,
        target: &Arc<HttpComponent>,
        matched: RouteMatch,
        trace: Option<Trace>,
    ) -> Result<Response<HyperOutgoingBody>, Failure> {
        let req = self.read_body(req).await?;
        let mut req = self.add_spin_headers(req, client, route, &matched);
        if let Some(trace) = &trace {
            // The guest continues the request's span, not the caller's.
            trace.inject(req.headers_mut());
        }

        let permit = self
            .instances
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Failure::ShuttingDown)?;
        // Taken once: this request runs on this version to the end, even if `tessera
        // watch` installs a new one meanwhile.
        let loaded = target.handle.current();
        let (mut store, ready_proxy) = match target.ready.take(&loaded).await {
            Some(ready) => {
                let mut store = ready.store;
                self.runtime.arm_deadline(&mut store);
                (store, Some(ready.proxy))
            }
            None => (
                self.runtime.new_store(&loaded).map_err(Failure::Host)?,
                None,
            ),
        };
        store.data_mut().set_trace(trace);
        let (sender, mut receiver) = tokio::sync::oneshot::channel();
        let incoming = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)
            .map_err(|e| Failure::Host(e.into()))?;
        let outparam = store
            .data_mut()
            .http()
            .new_response_outparam(sender)
            .map_err(|e| Failure::Host(e.into()))?;
        let timeout = self.runtime.limits.timeout;
        let next = NextInstance {
            runtime: self.runtime.clone(),
            component: target.clone(),
            instances: self.instances.clone(),
        };

        let guest = async move {
            let Some(pre) = &loaded.http else {
                // The runtime links the entry point of every routed component.
                anyhow::bail!("the component has no HTTP entry point");
            };
            let run = async {
                let proxy = match ready_proxy {
                    Some(proxy) => proxy,
                    None => pre.instantiate_async(&mut store).await?,
                };
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, incoming, outparam)
                    .await
            };
            let result = match tokio::time::timeout(timeout, run).await {
                Ok(result) => result.map_err(anyhow::Error::from),
                Err(_) => Err(anyhow::anyhow!("timed out after {timeout:?}")),
            };
            release_after_response(store, permit, next);
            result
        };

        // The guest runs on this connection's task until it has set its response; what
        // is left of its run then (streaming the body, work after the response) goes on
        // in a task of its own. A small response costs no task and no hand-off between
        // threads.
        let mut guest = GuestRun::new(guest, target.id.clone());
        let (answer, finished) = tokio::select! {
            biased;
            // The guest is done, so its answer (or its absence) is settled.
            result = &mut guest => (receiver.await, Some(result)),
            // The head goes to hyper; the rest of the run continues on its own task.
            answer = &mut receiver => (answer, None),
        };
        if let (Ok(Ok(_)), Some(Err(e))) = (&answer, &finished) {
            log_failure_after_head(&target.id, e);
        }
        match answer {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(Failure::Guest(anyhow::anyhow!(
                "guest returned error code {code:?}"
            ))),
            // No response set: the guest's own result says why (awaited if it still
            // runs, having dropped its response outparam unset).
            Err(_) => {
                let result = match finished {
                    Some(result) => result,
                    None => guest.await,
                };
                Err(Failure::Guest(result.err().unwrap_or_else(|| {
                    anyhow::anyhow!("guest returned without setting a response")
                })))
            }
        }
    }

    /// Buffers the body up to the limit so an oversized upload gets a 413 before any
    /// instance (and its memory) is spent on it.
    async fn read_body(&self, req: Request<Incoming>) -> Result<Request<Full<Bytes>>, Failure> {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.max_body_bytes as u64) {
            return Err(Failure::TooLarge);
        }
        let (parts, body) = req.into_parts();
        let bytes = match Limited::new(body, self.max_body_bytes).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(Failure::TooLarge),
            Err(e) => {
                return Err(Failure::BadRequest(format!(
                    "could not read the request body: {e}"
                )));
            }
        };
        Ok(Request::from_parts(parts, Full::new(bytes)))
    }

    fn add_spin_headers(
        &self,
        mut req: Request<Full<Bytes>>,
        client: SocketAddr,
        route: &Route,
        matched: &RouteMatch,
    ) -> Request<Full<Bytes>> {
        let host = match req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
        {
            Some(h) => h.to_owned(),
            None => self.listen_addr.to_string(),
        };
        let full_url = format!(
            "http://{host}{}",
            req.uri().path_and_query().map_or("/", |p| p.as_str())
        );
        // wasi:http needs an absolute URI (authority) on the incoming request; the path
        // and query are kept as hyper parsed them.
        let mut uri = req.uri().clone().into_parts();
        uri.scheme = Some(http::uri::Scheme::HTTP);
        uri.authority = host.parse().ok();
        if let Ok(uri) = http::Uri::from_parts(uri) {
            *req.uri_mut() = uri;
        }
        let headers = req.headers_mut();
        headers.reserve(8 + matched.params.len());
        let mut set = |name: http::HeaderName, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(name, value);
            }
        };
        let named = http::HeaderName::from_static;
        set(header::HOST, &host);
        set(named("spin-full-url"), &full_url);
        set(named("spin-path-info"), &matched.path_info);
        set(named("spin-matched-route"), &route.raw);
        set(named("spin-raw-component-route"), &route.raw);
        set(named("spin-component-route"), route.component_route());
        set(named("spin-base-path"), "/");
        set(named("spin-client-addr"), &client.to_string());
        for (name, value) in &matched.params {
            let name = format!("spin-path-match-{}", name.to_ascii_lowercase());
            if let Ok(name) = http::HeaderName::try_from(name) {
                set(name, value);
            }
        }
        req
    }
}

/// Ends a request's span at its response head, failed for a 5xx.
fn end_request_span(trace: Trace, status: StatusCode) {
    trace.set_attribute(opentelemetry::KeyValue::new(
        "http.response.status_code",
        i64::from(status.as_u16()),
    ));
    let error = status.is_server_error().then(|| status.to_string());
    trace.end(error.as_deref());
}

/// Why a request did not get the component's response.
/// A guest's run of one request, polled by the connection's task. Whatever of it has not
/// finished when this is dropped (the response has been handed to hyper, or the client
/// went away) continues on a task of its own, so a guest is never cut off mid-run because
/// its answer was sent or no longer wanted: as if it had had its own task from the start.
struct GuestRun {
    run: Option<std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>>,
    component: ComponentId,
}

impl GuestRun {
    fn new(
        run: impl Future<Output = anyhow::Result<()>> + Send + 'static,
        component: ComponentId,
    ) -> Self {
        GuestRun {
            run: Some(Box::pin(run)),
            component,
        }
    }
}

impl Future for GuestRun {
    type Output = anyhow::Result<()>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let Some(run) = self.run.as_mut() else {
            return std::task::Poll::Ready(Ok(()));
        };
        let result = std::task::ready!(run.as_mut().poll(cx));
        self.run = None;
        std::task::Poll::Ready(result)
    }
}

impl Drop for GuestRun {
    fn drop(&mut self) {
        let Some(run) = self.run.take() else {
            return;
        };
        // Dropped outside a runtime only as the host exits: the run ends with it.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let component = self.component.clone();
        runtime.spawn(async move {
            if let Err(e) = run.await {
                log_failure_after_head(&component, &e);
            }
        });
    }
}

/// What a finished request's task needs to make its component's next instance ready.
struct NextInstance {
    runtime: Arc<Runtime>,
    component: Arc<HttpComponent>,
    instances: Arc<Semaphore>,
}

impl NextInstance {
    /// Whether the host has room to instantiate ahead: fewer instances running than it
    /// has cores. When the cores are all busy a ready instance saves no one any time
    /// (instantiating inline costs the same CPU), while keeping one per component warm
    /// under load spread the Python service over more pool slots (each holding its
    /// pages: RSS after a 32-connection load 108 → 139 MiB without this check).
    fn host_has_room(&self) -> bool {
        let max = self.runtime.limits.max_instances as usize;
        let running = max.saturating_sub(self.instances.available_permits());
        running < cores()
    }
}

fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Drops a finished instance's store, then its permit, and, when the host has room, makes
/// the component's next instance ready ([`super::ready_instance`]), on a task of its own.
/// Dropping the store resets the instance's memory (the pages it dirtied zeroed or
/// restored from the image: the largest part of a hello's teardown). Spawned from the
/// connection's task, the task runs when that one next yields, after hyper has written
/// the response, so neither the reset nor the next instantiation is part of a client's
/// wait. The permit goes after the store: the pool must not hand the slot out before the
/// store has let go of it.
fn release_after_response(
    store: wasmtime::Store<crate::state::HostState>,
    permit: tokio::sync::OwnedSemaphorePermit,
    next: NextInstance,
) {
    let Ok(tasks) = tokio::runtime::Handle::try_current() else {
        // Only as the host exits.
        drop(store);
        drop(permit);
        return;
    };
    tasks.spawn(async move {
        drop(store);
        drop(permit);
        if next.host_has_room() {
            let component = &next.component;
            component
                .ready
                .refill(&next.runtime, &component.handle)
                .await;
        }
    });
}

/// A guest that failed after its response head had been handed over: the failure can only
/// cut the body short, but it must not go unreported.
fn log_failure_after_head(component: &ComponentId, failure: &anyhow::Error) {
    tracing::error!(
        target: "tessera::request",
        %component,
        "component failed after sending the response head: {failure:#}"
    );
}

enum Failure {
    TooLarge,
    BadRequest(String),
    ShuttingDown,
    /// The host could not set the instance up.
    Host(anyhow::Error),
    /// The guest trapped, timed out or never responded.
    Guest(anyhow::Error),
}

impl Failure {
    fn into_response(self, component: &ComponentId) -> Response<HyperOutgoingBody> {
        match self {
            Failure::TooLarge => {
                error_response(StatusCode::PAYLOAD_TOO_LARGE, "Request body is too large")
            }
            Failure::BadRequest(msg) => error_response(StatusCode::BAD_REQUEST, &msg),
            Failure::ShuttingDown => {
                error_response(StatusCode::SERVICE_UNAVAILABLE, "Server is shutting down")
            }
            Failure::Host(e) | Failure::Guest(e) => {
                tracing::error!(%component, "request failed: {e:?}");
                error_response(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong")
            }
        }
    }
}

/// The path prefix Spin keeps for the host.
const WELL_KNOWN: &str = "/.well-known/spin/";

/// Spin's host endpoints: `health` (200 `OK`, what SpinKube's readiness and liveness
/// checks call) and `info` (the host and its version); anything else under the prefix
/// is the usual JSON 404.
fn well_known(path: &str) -> Response<HyperOutgoingBody> {
    let (content_type, body) = match &path[WELL_KNOWN.len()..] {
        "health" => ("text/plain", "OK".to_owned()),
        "info" => (
            "application/json",
            serde_json::json!({ "host": "tessera", "version": env!("CARGO_PKG_VERSION") })
                .to_string(),
        ),
        _ => return error_response(StatusCode::NOT_FOUND, "Not Found"),
    };
    host_response(StatusCode::OK, content_type, body)
}

/// Host-generated errors use the same JSON error body as the services.
pub fn error_response(status: StatusCode, message: &str) -> Response<HyperOutgoingBody> {
    let body = serde_json::json!({ "errors": [{ "message": message }] }).to_string();
    host_response(status, "application/json", body)
}

/// A response the host writes itself (no component involved).
fn host_response(
    status: StatusCode,
    content_type: &'static str,
    body: String,
) -> Response<HyperOutgoingBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Binds the listener with an error that says what to do when the port is taken.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} (is another server using that port? choose another with --listen, e.g. --listen 127.0.0.1:0)")
    })
}
