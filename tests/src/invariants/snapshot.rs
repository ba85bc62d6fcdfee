//! Everything the checker looks at, read at one moment: each service's sqlite file
//! (read-only), each service's API, localstripe, and the events seen.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use reqwest::Client;
use rusqlite::{Connection, OpenFlags};
use serde_json::Value;

use super::Target;
use crate::event_log::EventLog;
use crate::workload::Record;

/// A ticket as the tickets service holds it, or as orders' replica of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRow {
    pub title: String,
    pub price_cents: i64,
    pub version: i64,
    pub order_id: Option<String>,
}

/// An order as the orders service holds it.
#[derive(Debug, Clone)]
pub struct OrderRow {
    pub user_id: String,
    pub ticket_id: String,
    pub status: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A charge to give back, as payments holds it.
#[derive(Debug, Clone)]
pub struct RefundRow {
    pub stripe_id: String,
    pub order_id: String,
    /// Set once Stripe made the refund.
    pub refund_id: Option<String>,
}

/// What localstripe holds.
#[derive(Debug, Clone, Default)]
pub struct Money {
    /// Succeeded PaymentIntents: id → amount in cents.
    pub charged: BTreeMap<String, i64>,
    /// PaymentIntents with a refund.
    pub refunded: BTreeSet<String>,
}

impl Money {
    /// Charges whose money is kept (succeeded, not refunded).
    pub fn kept(&self) -> impl Iterator<Item = (&String, &i64)> {
        self.charged
            .iter()
            .filter(|(id, _)| !self.refunded.contains(*id))
    }
}

/// The whole state, read at `now` (Unix seconds).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub now: i64,
    /// tickets.db `tickets`.
    pub tickets: BTreeMap<String, TicketRow>,
    /// orders.db `orders`.
    pub orders: BTreeMap<String, OrderRow>,
    /// orders.db `tickets`: orders' replica.
    pub order_tickets: BTreeMap<String, TicketRow>,
    /// orders.db `order_payments`: order → (status, stripe id).
    pub order_payments: BTreeMap<String, (String, String)>,
    /// payments.db `orders`: payments' replica, order → status.
    pub payment_orders: BTreeMap<String, String>,
    /// payments.db `payments`: order → stripe id.
    pub payments: BTreeMap<String, String>,
    /// payments.db `refunds`.
    pub refunds: Vec<RefundRow>,
    /// `GET /api/tickets/:id` of every ticket (the body; `Null` if it failed).
    pub api_tickets: BTreeMap<String, Value>,
    /// `GET /api/orders/:id` as its buyer, for every order whose buyer the workload
    /// has a session of.
    pub api_orders: BTreeMap<String, Value>,
    pub money: Money,
    /// `expiration:complete` events seen per order id.
    pub expirations: BTreeMap<String, usize>,
    /// Orders expiration marked as expired (`expiration:done:<id>` in Redis).
    pub expirations_done: BTreeSet<String>,
}

impl Snapshot {
    /// Reads everything. A part that cannot be read is left empty and reported as an
    /// error string (the caller polls again).
    pub async fn take(
        target: &Target,
        record: &Record,
        events: &EventLog,
    ) -> Result<Snapshot, String> {
        let empty = Snapshot {
            now: unix_now(),
            expirations: events.count_by("expiration:complete", "order_id"),
            ..Snapshot::default()
        };
        let state = target.state_dir.clone();
        let mut snapshot = tokio::task::spawn_blocking(move || read_databases(&state, empty))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("reading the sqlite files: {e}"))?;
        snapshot.api_tickets = api_tickets(target, snapshot.tickets.keys()).await;
        snapshot.api_orders = api_orders(target, record, &snapshot.orders).await;
        snapshot.money = money(target).await?;
        let redis = target.redis_address.clone();
        snapshot.expirations_done = tokio::task::spawn_blocking(move || expired_orders(&redis))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("reading expiration's marks in Redis: {e}"))?;
        Ok(snapshot)
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Opens `<state>/sqlite/<label>.db` read-only.
pub fn open(state: &Path, label: &str) -> rusqlite::Result<Connection> {
    let path = state.join("sqlite").join(format!("{label}.db"));
    let db = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    db.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(db)
}

/// Fills `snapshot` with the sqlite files' rows.
fn read_databases(state: &Path, mut snapshot: Snapshot) -> rusqlite::Result<Snapshot> {
    let tickets_db = open(state, "tickets")?;
    let orders_db = open(state, "orders")?;
    let payments_db = open(state, "payments")?;
    snapshot.tickets = tickets_of(
        &tickets_db,
        "SELECT id, title, price_cents, version, order_id FROM tickets",
    )?;
    snapshot.order_tickets = tickets_of(
        &orders_db,
        "SELECT id, title, price_cents, version, order_id FROM tickets",
    )?;
    snapshot.orders = rows(
        &orders_db,
        "SELECT id, user_id, ticket_id, status, expires_at FROM orders",
        |row| {
            Ok((
                row.get(0)?,
                OrderRow {
                    user_id: row.get(1)?,
                    ticket_id: row.get(2)?,
                    status: row.get(3)?,
                    expires_at: row.get(4)?,
                },
            ))
        },
    )?;
    snapshot.order_payments = rows(
        &orders_db,
        "SELECT order_id, status, stripe_id FROM order_payments",
        |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))),
    )?;
    snapshot.payment_orders = rows(&payments_db, "SELECT id, status FROM orders", |row| {
        Ok((row.get(0)?, row.get(1)?))
    })?;
    snapshot.payments = rows(
        &payments_db,
        "SELECT order_id, stripe_id FROM payments",
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let mut statement =
        payments_db.prepare("SELECT stripe_id, order_id, refund_id FROM refunds")?;
    snapshot.refunds = statement
        .query_map([], |row| {
            Ok(RefundRow {
                stripe_id: row.get(0)?,
                order_id: row.get(1)?,
                refund_id: row.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(snapshot)
}

fn tickets_of(db: &Connection, sql: &str) -> rusqlite::Result<BTreeMap<String, TicketRow>> {
    rows(db, sql, |row| {
        Ok((
            row.get(0)?,
            TicketRow {
                title: row.get(1)?,
                price_cents: row.get(2)?,
                version: row.get(3)?,
                order_id: row.get(4)?,
            },
        ))
    })
}

fn rows<V>(
    db: &Connection,
    sql: &str,
    read: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<(String, V)>,
) -> rusqlite::Result<BTreeMap<String, V>> {
    let mut statement = db.prepare(sql)?;
    statement.query_map([], read)?.collect()
}

/// The orders expiration has published `expiration:complete` for: its
/// `expiration:done:<id>` keys.
fn expired_orders(address: &str) -> redis::RedisResult<BTreeSet<String>> {
    const PREFIX: &str = "expiration:done:";
    let client = redis::Client::open(address)?;
    let mut connection = client.get_connection_with_timeout(std::time::Duration::from_secs(5))?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{PREFIX}*"))
        .query(&mut connection)?;
    Ok(keys
        .into_iter()
        .filter_map(|key| key.strip_prefix(PREFIX).map(str::to_owned))
        .collect())
}

/// How many API reads are in flight at once.
const PARALLEL: usize = 16;

/// GETs `path_of(key)` with `client_of(key)` for each key, `PARALLEL` at a time; a
/// failed read is `Null`.
async fn get_all(base_url: &str, keys: Vec<(String, Client, String)>) -> BTreeMap<String, Value> {
    let base_url: Arc<str> = base_url.trim_end_matches('/').into();
    let mut results = BTreeMap::new();
    let mut pending = keys.into_iter();
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.len() < PARALLEL {
            let Some((key, client, path)) = pending.next() else {
                break;
            };
            let url = format!("{base_url}{path}");
            running.spawn(async move {
                let body = match client.get(url).send().await {
                    Ok(resp) if resp.status().is_success() => {
                        resp.json::<Value>().await.unwrap_or(Value::Null)
                    }
                    _ => Value::Null,
                };
                (key, body)
            });
        }
        match running.join_next().await {
            Some(Ok((key, body))) => {
                results.insert(key, body);
            }
            Some(Err(err)) => panic!("an API read panicked: {err}"),
            None => return results,
        }
    }
}

async fn api_tickets<'a>(
    target: &Target,
    ids: impl Iterator<Item = &'a String>,
) -> BTreeMap<String, Value> {
    let client = Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("http client");
    let keys = ids
        .map(|id| (id.clone(), client.clone(), format!("/api/tickets/{id}")))
        .collect();
    get_all(&target.base_url, keys).await
}

async fn api_orders(
    target: &Target,
    record: &Record,
    orders: &BTreeMap<String, OrderRow>,
) -> BTreeMap<String, Value> {
    let keys = orders
        .iter()
        .filter_map(|(id, order)| {
            let user = record.user(&order.user_id)?;
            Some((id.clone(), user.client.clone(), format!("/api/orders/{id}")))
        })
        .collect();
    get_all(&target.base_url, keys).await
}

/// Every PaymentIntent and refund localstripe holds.
async fn money(target: &Target) -> Result<Money, String> {
    let intents = stripe_list(target, "payment_intents").await?;
    let refunds = stripe_list(target, "refunds").await?;
    let mut money = Money::default();
    let mut by_charge = BTreeMap::new();
    for intent in &intents {
        let Some(id) = intent["id"].as_str() else {
            continue;
        };
        let charge = &intent["latest_charge"];
        if let Some(charge) = charge["id"].as_str().or(charge.as_str()) {
            by_charge.insert(charge.to_owned(), id.to_owned());
        }
        if intent["status"] == "succeeded" {
            let amount = intent["amount"].as_i64().unwrap_or(0);
            money.charged.insert(id.to_owned(), amount);
        }
    }
    for refund in &refunds {
        let intent = refund["payment_intent"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| by_charge.get(refund["charge"].as_str()?).cloned());
        if let Some(intent) = intent {
            money.refunded.insert(intent);
        }
    }
    Ok(money)
}

/// Every object of `kind` at localstripe, a page at a time (one big page of thousands of
/// PaymentIntents takes localstripe longer than a request may).
async fn stripe_list(target: &Target, kind: &str) -> Result<Vec<Value>, String> {
    let client = Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("http client");
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut url = format!("{}/v1/{kind}?limit=100", target.stripe_base_url);
        if let Some(id) = &after {
            url.push_str(&format!("&starting_after={id}"));
        }
        let page: Value = client
            .get(&url)
            .bearer_auth(&target.stripe_secret_key)
            .send()
            .await
            .map_err(|e| format!("listing {kind} at localstripe: {e:?}"))?
            .json()
            .await
            .map_err(|e| format!("listing {kind} at localstripe: {e:?}"))?;
        let data = page["data"].as_array().cloned().unwrap_or_default();
        after = data
            .last()
            .and_then(|o| o["id"].as_str())
            .map(str::to_owned);
        all.extend(data);
        if page["has_more"] != true || after.is_none() {
            return Ok(all);
        }
    }
}
