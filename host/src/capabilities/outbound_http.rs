//! Outgoing `wasi:http` requests, allowed only to the component's `allowed_outbound_hosts`.

use std::sync::Arc;

use opentelemetry::KeyValue;

use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::allowed_hosts::default_port;
use crate::state::ComponentContext;
use crate::traces::{self, Trace};

pub struct OutboundHttp {
    component: Arc<ComponentContext>,
    /// The span of the instance's request or message, parent of each outbound request's.
    pub trace: Option<Trace>,
}

impl OutboundHttp {
    pub fn new(component: Arc<ComponentContext>) -> Self {
        OutboundHttp {
            component,
            trace: None,
        }
    }

    fn is_allowed(&self, uri: &http::Uri) -> bool {
        let scheme = uri.scheme_str().unwrap_or("https");
        let Some(host) = uri.host() else { return false };
        let Some(port) = uri.port_u16().or_else(|| default_port(scheme)) else {
            return false;
        };
        self.component.spec.allowed_hosts.allows(scheme, host, port)
    }
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> ResponseFuture {
        if !self.is_allowed(request.uri()) {
            tracing::warn!(
                component = %self.component.spec.id,
                uri = %request.uri(),
                "outbound request denied: destination not in allowed_outbound_hosts"
            );
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        // Timeouts the guest left unset get the host's default, not wasmtime's 600 s.
        let default = Some(self.component.outbound_timeout);
        let options = RequestOptions {
            connect_timeout: options.and_then(|o| o.connect_timeout).or(default),
            first_byte_timeout: options.and_then(|o| o.first_byte_timeout).or(default),
            between_bytes_timeout: options.and_then(|o| o.between_bytes_timeout).or(default),
        };
        let mut span = traces::host_call(self.trace.as_ref(), || {
            let method = request.method().to_string();
            let attributes = vec![
                KeyValue::new("http.request.method", method.clone()),
                KeyValue::new("url.full", redacted(request.uri())),
                KeyValue::new(
                    "server.address",
                    request.uri().host().unwrap_or_default().to_owned(),
                ),
            ];
            (method, attributes)
        });
        // The client span's context, or the unsampled request's, so that the
        // upstream continues the trace either way.
        let cx = span
            .context()
            .or_else(|| self.trace.as_ref().map(|t| t.context().clone()));
        if let Some(cx) = cx {
            traces::inject_unless_present(&cx, request.headers_mut());
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let sent = wasmtime_wasi_http::default_send_request(request, Some(options)).await;
            let (response, io) = match sent {
                Ok(sent) => sent,
                Err(e) => {
                    span.fail(&e);
                    return Err(e);
                }
            };
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(response.status().as_u16()),
            ));
            drop(span);
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}

/// The URL without credentials or query (either may carry secrets), for the span.
fn redacted(uri: &http::Uri) -> String {
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    format!(
        "{}://{}{port}{}",
        uri.scheme_str().unwrap_or("https"),
        uri.host().unwrap_or_default(),
        uri.path()
    )
}
