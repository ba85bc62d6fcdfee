//! Real races: many threads, each with its own connection to one sqlite file (as the
//! host gives each instance its own connection), run the production handlers and SQL
//! at the same moment.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::events::{self, Event, ExpirationComplete, PaymentCreated};
use common::outbox::testing::pending;
use common::session::{SessionUser, issue_token};
use common::sqlite::testing::run_statement;
use common::sqlite::{Database, Error, QueryResult, Value};
use orders::domain::{LockWindow, OrderId, OrderStatus};
use orders::routes::{Deps, create};
use orders::store::{OrderStore, SqliteOrders};
use orders::{domain::Ticket, messages};
use spin_sdk::http::{IntoResponse, Request};

const SECRET: &str = "race-secret";
const NOW: u64 = 1_800_000_000;
const RACERS: usize = 50;

/// A connection to a sqlite file, configured like the host's (WAL, busy timeout).
struct FileDb(rusqlite::Connection);

impl FileDb {
    fn open(path: &Path) -> Self {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        Self(conn)
    }
}

impl Database for FileDb {
    fn execute(&self, statement: &str, params: &[Value]) -> Result<QueryResult, Error> {
        run_statement(&self.0, statement, params).map_err(|err| Error::Io(err.to_string()))
    }
}

/// A fresh database file, removed (with its WAL files) on drop.
struct TempDb(PathBuf);

impl TempDb {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("orders-{name}-{}.db", std::process::id()));
        let db = Self(path);
        db.remove();
        db
    }

    fn store(&self) -> SqliteOrders<FileDb> {
        SqliteOrders::new(FileDb::open(&self.0)).unwrap()
    }

    fn remove(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Runs `racer(i)` on `RACERS` threads released at once; their results in order.
fn race<T: Send + 'static>(racer: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let start = Arc::new(Barrier::new(RACERS));
    let racer = Arc::new(racer);
    let threads: Vec<_> = (0..RACERS)
        .map(|i| {
            let (start, racer) = (start.clone(), racer.clone());
            thread::spawn(move || {
                start.wait();
                racer(i)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn ticket() -> Ticket {
    Ticket {
        id: "t1".into(),
        title: "Final".into(),
        price_cents: 5000,
        user_id: "seller".into(),
        version: 0,
        order_id: None,
    }
}

fn order_request(user: &str) -> Request {
    let session = SessionUser {
        id: user,
        email: "racer@example.com",
    };
    let token = issue_token(SECRET, session, NOW, 3_600).unwrap();
    Request::post("/api/orders", br#"{"ticketId":"t1"}"#.to_vec())
        .header("cookie", format!("session={token}"))
        .build()
}

fn message(event: impl Into<Event>) -> Vec<u8> {
    events::encode(
        &event.into(),
        "/tessera/test",
        "id",
        "2027-01-15T08:00:00Z",
        None,
    )
}

#[test]
fn of_fifty_concurrent_reservations_exactly_one_wins() {
    let db = Arc::new(TempDb::new("reserve"));
    db.store().replicate_ticket(ticket()).unwrap();

    let racing_db = db.clone();
    let statuses = race(move |i| {
        let deps = Deps {
            store: racing_db.store(),
            jwt_secret: SECRET.to_owned(),
            now: NOW,
        };
        let lock = LockWindow::from_seconds(180).unwrap();
        let response = create::handle(&order_request(&format!("user{i}")), &deps, lock);
        let response = response.into_response();
        (
            *response.status(),
            String::from_utf8_lossy(response.body()).into_owned(),
        )
    });

    let winners = statuses.iter().filter(|(status, _)| *status == 201).count();
    assert_eq!(winners, 1, "{statuses:?}");
    for (status, body) in statuses.iter().filter(|(status, _)| *status != 201) {
        assert_eq!(*status, 400, "{body}");
        assert_eq!(
            body,
            r#"{"errors":[{"message":"Ticket is already reserved"}]}"#
        );
    }
    let store = db.store();
    let events = pending(store.db()).unwrap();
    assert!(
        matches!(events.as_slice(), [Event::OrderCreated(_)]),
        "{events:?}"
    );
}

#[test]
fn racing_expiry_and_payment_change_the_order_exactly_once() {
    let db = Arc::new(TempDb::new("settle"));
    let store = db.store();
    store.replicate_ticket(ticket()).unwrap();
    let deps = Deps {
        store,
        jwt_secret: SECRET.to_owned(),
        now: NOW,
    };
    let response = create::handle(
        &order_request("buyer"),
        &deps,
        LockWindow::from_seconds(180).unwrap(),
    )
    .unwrap();
    let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    let id = OrderId::parse(body["id"].as_str().unwrap()).unwrap();

    let racing_db = db.clone();
    let order_id = id.to_string();
    race(move |i| {
        let payload = if i % 2 == 0 {
            message(ExpirationComplete {
                order_id: order_id.clone(),
            })
        } else {
            message(PaymentCreated {
                id: format!("p{i}"),
                order_id: order_id.clone(),
                stripe_id: format!("pi_{i}"),
            })
        };
        messages::handle(&racing_db.store(), &payload, NOW).unwrap();
    });

    let order = deps.store.order(&id).unwrap().unwrap();
    assert_eq!(order.version, 1);
    let events = pending(deps.store.db()).unwrap();
    match (order.status, &events[1..]) {
        // Every payment that found the order cancelled announced the cancellation again
        // (for payments to refund it): the same event, never a second change.
        (OrderStatus::Cancelled, cancellations @ [_, ..]) => {
            for event in cancellations {
                assert!(
                    matches!(event, Event::OrderCancelled(e) if e.version == 1),
                    "{events:?}"
                );
            }
        }
        (OrderStatus::Complete, [Event::OrderCompleted(e)]) => assert_eq!(e.version, 1),
        other => panic!("expected one change and its event, got {other:?}"),
    }
}
