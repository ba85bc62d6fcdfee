//! Outgoing `wasi:http` requests, allowed only to the component's `allowed_outbound_hosts`.

use std::sync::Arc;

use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::allowed_hosts::default_port;
use crate::state::ComponentContext;

pub struct OutboundHttp {
    component: Arc<ComponentContext>,
}

impl OutboundHttp {
    pub fn new(component: Arc<ComponentContext>) -> Self {
        OutboundHttp { component }
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
        request: http::Request<WasiBody>,
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
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) =
                wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}
