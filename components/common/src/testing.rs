//! Assertions and request builders shared by the services' native tests (feature
//! `testing`).

use serde_json::Value;
use spin_sdk::http::{IntoResponse, Method, Request, Response, Router};

use crate::ApiError;
use crate::events::{self, Event};
use crate::session::{SessionUser, issue_token};
use crate::trace::TraceParent;

/// Asserts that `router` answers every `(method, path)` with the JSON 404
/// (`{"errors":[{"message":"Not Found"}]}`). Only use requests that stop before a
/// handler, which would call into Spin.
pub fn assert_json_404s(router: &Router, requests: &[(Method, &str)]) {
    for (method, path) in requests {
        let response =
            futures::executor::block_on(router.handle_async(Request::new(method.clone(), *path)));
        assert_eq!(*response.status(), 404, "{method} {path}");
        assert_eq!(
            response.header("content-type").and_then(|v| v.as_str()),
            Some("application/json")
        );
        assert_eq!(response.body(), br#"{"errors":[{"message":"Not Found"}]}"#);
    }
}

/// The response body as JSON.
pub fn body_json(response: &Response) -> Value {
    serde_json::from_slice(response.body()).unwrap()
}

/// Asserts an error response and returns it: status, JSON content type and `errors`
/// array.
pub fn assert_json_error(
    result: Result<Response, ApiError>,
    status: u16,
    errors: Value,
) -> Response {
    let response = result.into_response();
    assert_eq!(*response.status(), status, "{:?}", body_json(&response));
    assert_eq!(
        response.header("content-type").and_then(|v| v.as_str()),
        Some("application/json")
    );
    assert_eq!(
        body_json(&response),
        serde_json::json!({ "errors": errors })
    );
    response
}

/// The `Cookie` header of a session for `user` signed with `secret`, issued at
/// `issued_at` and valid for an hour.
pub fn session_cookie(secret: &str, user: SessionUser<'_>, issued_at: u64) -> String {
    let token = issue_token(secret, user, issued_at, 3_600).unwrap();
    format!("session={token}")
}

/// [`session_cookie`] for `user_id`, whose email is `<user_id>@example.com`.
pub fn user_cookie(secret: &str, user_id: &str, issued_at: u64) -> String {
    let user = SessionUser {
        id: user_id,
        email: &format!("{user_id}@example.com"),
    };
    session_cookie(secret, user, issued_at)
}

/// `event` as a Redis message (source `/tessera/test`, a fixed id and time, no
/// `traceparent`).
pub fn message(event: impl Into<Event>) -> Vec<u8> {
    traced_message(event, None)
}

/// [`message`] with `traceparent` as its envelope's `traceparent`, as the Tessera host
/// hands a consumer a traced message.
pub fn traced_message(event: impl Into<Event>, traceparent: Option<&TraceParent>) -> Vec<u8> {
    events::encode(
        &event.into(),
        "/tessera/test",
        "00000000-0000-4000-8000-000000000000",
        "2026-11-24T10:00:00Z",
        traceparent,
    )
}

/// A valid traceparent for tests; `n` (1 to 255) tells several apart.
pub fn traceparent(n: u8) -> TraceParent {
    let text = format!("00-4bf92f3577b34da6a3ce929d0e0e47{n:02x}-00f067aa0ba902{n:02x}-01");
    TraceParent::parse(&text).unwrap_or_else(|| panic!("{text} is a valid traceparent"))
}

/// A request with an optional `Cookie` header and an optional JSON body.
pub fn json_request(
    method: Method,
    path: &str,
    cookie: Option<String>,
    body: Option<Value>,
) -> Request {
    let mut builder = Request::builder();
    builder.method(method).uri(path);
    if let Some(cookie) = cookie {
        builder.header("cookie", cookie);
    }
    match body {
        Some(body) => builder
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap())
            .build(),
        None => builder.build(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::not_found;
    use crate::session::verify_token;
    use spin_sdk::http::Params;

    #[test]
    fn a_fallback_router_answers_json_404s() {
        let mut router = Router::new();
        router.any("/*", not_found);
        assert_json_404s(&router, &[(Method::Get, "/"), (Method::Post, "/x/y")]);
    }

    #[test]
    #[should_panic(expected = "GET /ok")]
    fn other_answers_fail_the_assertion() {
        let mut router = Router::new();
        router.get("/ok", |_: Request, _: Params| Response::new(200, ()));
        assert_json_404s(&router, &[(Method::Get, "/ok")]);
    }

    #[test]
    fn messages_decode_to_their_event() {
        let event: Event = crate::events::ExpirationComplete {
            order_id: "o1".into(),
        }
        .into();
        assert_eq!(events::decode(&message(event.clone())).unwrap(), event);
    }

    #[test]
    fn error_responses_are_checked() {
        let response = assert_json_error(
            Err(ApiError::NotFound),
            404,
            serde_json::json!([{ "message": "Not Found" }]),
        );
        assert!(response.header("set-cookie").is_none());
    }

    #[test]
    fn requests_carry_the_session_and_the_json_body() {
        let user = SessionUser {
            id: "u1",
            email: "u1@example.com",
        };
        let cookie = session_cookie("secret", user, 1_000);
        let token = cookie.strip_prefix("session=").unwrap();
        assert_eq!(verify_token("secret", token, 1_010).unwrap().id, "u1");

        let req = json_request(
            Method::Post,
            "/api/x",
            Some(cookie.clone()),
            Some(serde_json::json!({ "a": 1 })),
        );
        assert_eq!(req.path(), "/api/x");
        assert_eq!(
            req.header("cookie").and_then(|v| v.as_str()),
            Some(cookie.as_str())
        );
        assert_eq!(
            req.header("content-type").and_then(|v| v.as_str()),
            Some("application/json")
        );
        assert_eq!(req.body(), br#"{"a":1}"#);

        let claims = verify_token("secret", &user_cookie("secret", "u2", 1_000)[8..], 1_010);
        assert_eq!(claims.unwrap().email, "u2@example.com");

        let req = json_request(Method::Get, "/api/x", None, None);
        assert!(req.header("cookie").is_none());
        assert!(req.body().is_empty());
    }
}
