//! Thin Spin HTTP glue shared by every service.
//!
//! spin-sdk 5.2 buffers the whole request body before a handler sees it, and its
//! `Router` answers unknown routes with a plain-text 404 (or 405 when another
//! method matches). [`read_request`] reads the body with a size limit instead, and
//! [`not_found`] is the JSON fallback route every service registers as `/*`. [`serve`]
//! is the body of every service's `#[http_component]`; it makes the request's
//! `traceparent` header the current trace context ([`crate::trace`]), and runs what the
//! handler left for after the response ([`after_response`]).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;

use futures::TryStreamExt;
use spin_sdk::http::{
    IncomingRequest, IntoResponse, OutgoingResponse, Params, Request, Response, ResponseOutparam,
    Router,
};

use crate::error::ApiError;
use crate::json::MAX_BODY_BYTES;
use crate::trace::{self, TraceParent};

/// Work left for after the response.
type Deferred = Pin<Box<dyn Future<Output = ()>>>;

thread_local! {
    /// What the current request's handler left for after its response. A component
    /// instance serves one request, so this is that request's.
    static AFTER_RESPONSE: RefCell<Vec<Deferred>> = const { RefCell::new(Vec::new()) };
}

/// Runs `work` after [`serve`] has sent the response (whether or not the client is still
/// there to read it), in the order it was left: what the client need not wait for,
/// such as relaying the outbox, whose events are already committed.
///
/// wasi:http lets a handler go on after it has set its response, and Spin and the
/// Tessera host send the response as soon as it is set; the work still runs inside the
/// request's instance, under the request's timeout. Only for HTTP handlers: nothing
/// else runs this queue.
pub fn after_response(work: impl Future<Output = ()> + 'static) {
    AFTER_RESPONSE.with(|queue| queue.borrow_mut().push(Box::pin(work)));
}

/// One HTTP request of a service: reads the body (at most [`MAX_BODY_BYTES`], else 413),
/// hands the request to [`route`] (a body that cannot be read is answered with its
/// error), sends the response, then runs what the handler left for after it
/// ([`after_response`]).
pub async fn serve(incoming: IncomingRequest, response_out: ResponseOutparam, router: Router) {
    let response = match read_request(incoming, MAX_BODY_BYTES).await {
        Ok(req) => route(req, &router).await,
        Err(err) => err.into_response(),
    };
    send(response_out, response).await;
    let deferred = AFTER_RESPONSE.with(|queue| std::mem::take(&mut *queue.borrow_mut()));
    for work in deferred {
        work.await;
    }
}

/// Sets `response` as the answer and writes its body, as spin-sdk's own handler glue
/// does; a failure is logged (the host answers 500 for a handler that set nothing).
async fn send(response_out: ResponseOutparam, mut response: Response) {
    let body = std::mem::take(response.body_mut());
    match OutgoingResponse::try_from(response) {
        Ok(outgoing) => {
            if let Err(err) = response_out.set_with_body(outgoing, body).await {
                eprintln!("could not send the response body: {err}");
            }
        }
        Err(err) => eprintln!("could not build the response: {err:#}"),
    }
}

/// Hands `req` to `router` with the request's trace context ([`traceparent`]) current,
/// so the events its handler queues carry it.
pub async fn route(req: Request, router: &Router) -> Response {
    trace::set_current(traceparent(&req));
    router.handle_async(req).await
}

/// The request's `traceparent` header (set by the Tessera host to its server span), if
/// it is a valid W3C traceparent; a missing or invalid one is no context.
pub fn traceparent(req: &Request) -> Option<TraceParent> {
    let value = req.header(trace::ATTRIBUTE)?.as_str()?;
    TraceParent::parse(value)
}

/// Reads `incoming` into a [`Request`], refusing bodies over `limit` bytes with 413
/// without buffering them.
pub async fn read_request(incoming: IncomingRequest, limit: usize) -> Result<Request, ApiError> {
    let headers = incoming.headers().entries();
    let declared_length = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| std::str::from_utf8(value).ok()?.trim().parse::<u64>().ok());
    if declared_length.is_some_and(|length| length > limit as u64) {
        return Err(ApiError::PayloadTooLarge);
    }

    let method = incoming.method();
    let uri = incoming.uri();
    let mut body = Vec::new();
    // Chunked bodies have no Content-Length, so the limit is also enforced while reading.
    let mut chunks = incoming.into_body_stream();
    while let Some(chunk) = chunks.try_next().await.map_err(|e| {
        eprintln!("failed to read the request body: {e:?}");
        ApiError::BadRequest("Could not read the request body".to_owned())
    })? {
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend(chunk);
    }

    Ok(Request::builder()
        .method(method)
        .uri(uri)
        .headers(headers)
        .body(body)
        .build())
}

/// Router fallback: `{"errors":[{"message":"Not Found"}]}` with 404.
pub fn not_found(_req: Request, _params: Params) -> Response {
    ApiError::NotFound.into_response()
}

/// The request's `Cookie` header, if it is valid UTF-8.
pub fn cookie_header(req: &Request) -> Option<&str> {
    req.header("cookie").and_then(|value| value.as_str())
}

/// Adds a `Set-Cookie` header.
///
/// spin-sdk 5.2 keeps one value per header name (a `HashMap`), so a response can set
/// only one cookie this way; keys are lower-case, as `ResponseBuilder::header` stores them.
pub fn with_cookie(mut response: Response, set_cookie: String) -> Response {
    response.set_header("set-cookie", set_cookie);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use spin_sdk::http::Method;

    #[test]
    fn not_found_is_json() {
        let response = not_found(Request::new(Method::Get, "/nope"), Params::default());
        assert_eq!(*response.status(), 404);
        assert_eq!(response.body(), br#"{"errors":[{"message":"Not Found"}]}"#);
    }

    #[test]
    fn cookie_header_is_read_case_insensitively() {
        let req = Request::get("/").header("Cookie", "session=x").build();
        assert_eq!(cookie_header(&req), Some("session=x"));
        assert_eq!(cookie_header(&Request::new(Method::Get, "/")), None);
    }

    #[test]
    fn routing_makes_the_traceparent_header_the_current_context() {
        const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut router = Router::new();
        router.get("/trace", |_: Request, _: Params| {
            let seen = trace::current().map(|t| t.to_string()).unwrap_or_default();
            Response::new(200, seen)
        });
        let answer = |req: Request| {
            let response = futures::executor::block_on(route(req, &router));
            String::from_utf8(response.body().to_vec()).unwrap()
        };

        let traced = Request::get("/trace")
            .header("Traceparent", TRACEPARENT)
            .build();
        assert_eq!(answer(traced), TRACEPARENT);
        // Missing or invalid: no context, whatever an earlier request left.
        trace::set_current(TraceParent::parse(TRACEPARENT));
        assert_eq!(answer(Request::get("/trace").build()), "");
        for invalid in ["00-abc", &TRACEPARENT.to_uppercase()] {
            trace::set_current(TraceParent::parse(TRACEPARENT));
            let req = Request::get("/trace")
                .header("traceparent", invalid)
                .build();
            assert_eq!(answer(req), "", "{invalid}");
        }
    }

    #[test]
    fn with_cookie_sets_one_lower_case_header() {
        let response = with_cookie(Response::new(200, ()), "session=abc".into());
        assert_eq!(
            response.header("Set-Cookie").and_then(|v| v.as_str()),
            Some("session=abc")
        );
        assert_eq!(response.headers().count(), 1);
    }
}
