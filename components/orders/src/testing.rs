//! Test helpers: the real store on an in-memory sqlite, sessions, requests, and the
//! events published by the outbox.

use common::events::{Event, TicketCreated, TicketUpdated};
use common::outbox::testing::pending;
use common::sqlite::testing::MemoryDb;
/// Status, JSON content type and `errors` array of an error response.
pub use common::testing::assert_json_error as assert_error;
pub use common::testing::{body_json, message};
use common::testing::{json_request, user_cookie};
use serde_json::Value;
use spin_sdk::http::{Method, Request};

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
    user_cookie(SECRET, user_id, NOW - 10)
}

/// A request as `user` (or signed out), with an optional JSON body.
pub fn request(method: Method, path: &str, user: Option<&str>, body: Option<Value>) -> Request {
    json_request(method, path, user.map(cookie), body)
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
