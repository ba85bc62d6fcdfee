//! Test helpers: the real store on an in-memory sqlite, sessions, requests, and the
//! events published by the outbox.

use common::events::{self, Event, TicketCreated, TicketUpdated};
use common::outbox::testing::pending;
use common::session::{SessionUser, issue_token};
use common::sqlite::testing::MemoryDb;
use serde_json::Value;
use spin_sdk::http::{IntoResponse, Method, Request, Response};

use crate::domain::LockWindow;
use crate::routes::Deps;
use crate::store::{OrderStore, SqliteOrders};

pub const SECRET: &str = "orders-test-secret";
pub const NOW: u64 = 1_800_000_000;
pub const LOCK_SECONDS: u64 = 180;

/// [`crate::store::OrderStore`] with the production SQL on a private in-memory database.
pub type TestStore = SqliteOrders<MemoryDb>;

pub fn store() -> TestStore {
    SqliteOrders::new(MemoryDb::new()).unwrap()
}

pub fn deps() -> Deps<TestStore> {
    Deps {
        store: store(),
        jwt_secret: SECRET.to_owned(),
        now: NOW,
    }
}

pub fn lock() -> LockWindow {
    LockWindow::from_seconds(LOCK_SECONDS).unwrap()
}

/// A ticket replica, as `ticket:created` would make it.
pub fn put_ticket(store: &TestStore, id: &str, price_cents: u64) {
    assert!(
        store
            .replicate_ticket(created(id, price_cents).into())
            .unwrap()
    );
}

pub fn created(id: &str, price_cents: u64) -> TicketCreated {
    TicketCreated {
        id: id.to_owned(),
        version: 0,
        title: format!("Show {id}"),
        price_cents,
        user_id: "seller".to_owned(),
    }
}

pub fn updated(id: &str, version: u64, order_id: Option<&str>) -> TicketUpdated {
    TicketUpdated {
        id: id.to_owned(),
        version,
        title: format!("Show {id} v{version}"),
        price_cents: 1000 + version,
        user_id: "seller".to_owned(),
        order_id: order_id.map(str::to_owned),
    }
}

/// The `Cookie` header of a session for `user_id`.
pub fn cookie(user_id: &str) -> String {
    let user = SessionUser {
        id: user_id,
        email: &format!("{user_id}@example.com"),
    };
    let token = issue_token(SECRET, user, NOW - 10, 3_600).unwrap();
    format!("session={token}")
}

/// A request as `user` (or signed out), with an optional JSON body.
pub fn request(method: Method, path: &str, user: Option<&str>, body: Option<Value>) -> Request {
    let mut builder = Request::builder();
    builder.method(method).uri(path);
    if let Some(user) = user {
        builder.header("cookie", cookie(user));
    }
    match body {
        Some(body) => builder
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap())
            .build(),
        None => builder.build(),
    }
}

pub fn body_json(response: &Response) -> Value {
    serde_json::from_slice(response.body()).unwrap()
}

/// Asserts an error response: status, JSON content type and `errors` array.
pub fn assert_error(result: Result<Response, common::ApiError>, status: u16, errors: Value) {
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
}

/// The events waiting in the outbox, oldest first.
pub fn outbox(store: &TestStore) -> Vec<Event> {
    pending(store.db()).unwrap()
}

/// The one event of `events`.
pub fn single(events: Vec<Event>) -> Event {
    let [event]: [Event; 1] = events
        .try_into()
        .unwrap_or_else(|events| panic!("expected one event, got {events:?}"));
    event
}

/// `event` as a Redis message.
pub fn message(event: impl Into<Event>) -> Vec<u8> {
    events::encode(
        &event.into(),
        "/tessera/test",
        "00000000-0000-4000-8000-000000000000",
        "2026-11-24T10:00:00Z",
    )
}
