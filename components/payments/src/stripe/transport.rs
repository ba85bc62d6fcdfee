//! How Stripe requests travel: Spin's outbound HTTP in the component, a double in tests.

use std::future::Future;

use anyhow::Context;
use spin_sdk::http::Method;

/// An HTTP request to Stripe.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    /// GET or POST.
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The form-encoded body (empty for GET).
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Stripe's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Vec<u8>,
}

/// Sends a request and buffers the whole response.
pub trait Transport {
    /// An error means no HTTP answer arrived (refused, DNS, TLS, reset, not allowed).
    fn send(&self, request: HttpRequest) -> impl Future<Output = anyhow::Result<HttpResponse>>;
}

/// Spin's outbound HTTP (`spin_sdk::http::send`). The destination must be in the
/// component's `allowed_outbound_hosts`, or the host refuses the request (an error
/// here, like an unreachable server).
#[derive(Debug, Clone, Copy, Default)]
pub struct SpinTransport;

impl Transport for SpinTransport {
    async fn send(&self, request: HttpRequest) -> anyhow::Result<HttpResponse> {
        let mut builder = spin_sdk::http::Request::builder();
        builder.method(request.method).uri(request.url);
        for (name, value) in request.headers {
            builder.header(name, value);
        }
        let outgoing = builder.body(request.body).build();
        // The caller names the method and URL.
        let response: spin_sdk::http::Response = spin_sdk::http::send(outgoing)
            .await
            .context("Failed to reach Stripe")?;
        Ok(HttpResponse {
            status: *response.status(),
            body: response.into_body(),
        })
    }
}
