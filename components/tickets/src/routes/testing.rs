//! Test doubles and helpers for the route tests.

use common::session::SessionUser;
use common::sqlite::testing::MemoryDb;
/// Status, JSON content type and `errors` array of an error response.
pub use common::testing::assert_json_error as assert_error;
pub use common::testing::body_json;
use common::testing::session_cookie;
use serde_json::Value;
use spin_sdk::http::Request;

use super::{Deps, create};
use crate::store::{OrderEffect, Tickets};

pub const SECRET: &str = "route-test-secret";
pub const NOW: u64 = 1_795_514_580;
pub const USER: &str = "user-1";
pub const OTHER: &str = "user-2";
pub const ORDER: &str = "9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5";

pub type TestDeps = Deps<MemoryDb>;

pub fn deps() -> TestDeps {
    Deps {
        tickets: Tickets::new(MemoryDb::new()).unwrap(),
        jwt_secret: SECRET.to_owned(),
        now: NOW,
    }
}

fn with_session(mut req: Request, user: Option<&str>) -> Request {
    if let Some(user) = user {
        let session = SessionUser {
            id: user,
            email: "someone@example.com",
        };
        req.set_header("cookie", session_cookie(SECRET, session, NOW - 60));
    }
    req
}

pub fn post(body: Value, user: Option<&str>) -> Request {
    post_raw(&serde_json::to_vec(&body).unwrap(), user)
}

pub fn post_raw(body: &[u8], user: Option<&str>) -> Request {
    let req = Request::post("/api/tickets", body.to_vec())
        .header("content-type", "application/json")
        .build();
    with_session(req, user)
}

pub fn put(id: &str, body: Value, user: Option<&str>) -> Request {
    let req = Request::put(
        format!("/api/tickets/{id}"),
        serde_json::to_vec(&body).unwrap(),
    )
    .header("content-type", "application/json")
    .build();
    with_session(req, user)
}

pub fn get(uri: &str) -> Request {
    Request::get(uri).build()
}

/// Creates a ticket through the POST handler; the response body.
pub fn create_ticket(deps: &TestDeps, user: &str, title: &str, price: &str) -> Value {
    let body = format!(r#"{{"title": {}, "price": {price}}}"#, Value::from(title));
    let response = create::handle(&post_raw(body.as_bytes(), Some(user)), deps).unwrap();
    assert_eq!(*response.status(), 201);
    body_json(&response)
}

/// Lets `order` hold the ticket, as `order:created` does.
pub fn reserve(deps: &TestDeps, ticket_id: &str, order: &str) {
    let effect = deps
        .tickets
        .apply_order_event(order, 0, ticket_id, NOW, |t| t.reserve(order))
        .unwrap();
    assert!(matches!(effect, OrderEffect::Changed(_)), "{effect:?}");
}
