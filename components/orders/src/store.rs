//! Orders and the ticket replica in the sqlite database `orders`.
//!
//! Handlers and event consumers see only [`OrderStore`]. Its one implementation,
//! [`SqliteOrders`], is written against [`common::sqlite::Database`], so the very same
//! SQL runs on Spin's connection in the component and on an in-memory sqlite in the
//! native tests. Every write of an order and the event announcing it are committed
//! together: the event goes into the outbox table ([`common::outbox`]) in the same
//! transaction and is relayed to Redis after the commit.

use anyhow::Context;
use common::outbox::{self, Relay};
use common::sqlite::{
    self, Connection, Database, OwnedRow, Schema, Value, integer, take_rows, text,
};

use crate::domain::{
    ExpiresAt, Order, OrderId, OrderStatus, Payment, PaymentEvent, PaymentStatus, Ticket,
};

/// Database label; must be listed in the component's `sqlite_databases` and, being
/// other than `default`, declared in the runtime config.
pub const DATABASE: &str = "orders";

/// The `source` of the events this service publishes.
pub const EVENT_SOURCE: &str = "/tessera/orders";

/// The tables ([`sqlite::Schema`]: applied once per database).
///
/// `orders_one_holder_per_ticket` is what makes reserving atomic: at most one order in
/// a status that holds its ticket (`created`, `complete`; see
/// [`crate::domain::Lifecycle::holds_ticket`]) per ticket, however many instances
/// insert at once.
pub const SCHEMA: Schema = Schema {
    migrations: &[V1, V2],
};

/// The first schema, one statement per entry (hosts run a single statement per call).
const V1: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS tickets (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        price_cents INTEGER NOT NULL,
        user_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        order_id TEXT
    )",
    "CREATE TABLE IF NOT EXISTS orders (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        ticket_id TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('created', 'cancelled', 'complete')),
        expires_at INTEGER NOT NULL,
        version INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    )",
    "CREATE UNIQUE INDEX IF NOT EXISTS orders_one_holder_per_ticket
        ON orders (ticket_id) WHERE status IN ('created', 'complete')",
    "CREATE INDEX IF NOT EXISTS orders_by_user ON orders (user_id, created_at)",
    // The payment shown on an order (`domain::payment`), from payments' events.
    "CREATE TABLE IF NOT EXISTS order_payments (
        order_id TEXT PRIMARY KEY,
        status TEXT NOT NULL CHECK (status IN ('paid', 'refunded')),
        stripe_id TEXT NOT NULL
    )",
    outbox::SCHEMA,
    outbox::META_SCHEMA,
];

/// The expiry backstop (`overdue_query`) runs before every new order and on every
/// message: without an index it read the whole orders table each time, a cost that grew
/// with every order ever placed. Only orders awaiting payment are in it.
const V2: &[&str] = &[
    "CREATE INDEX IF NOT EXISTS orders_awaiting_payment_by_deadline
        ON orders (expires_at) WHERE status = 'created'",
];

/// Order rows joined with their ticket's replica and their payment.
const SELECT_ORDERS: &str = "SELECT o.id, o.user_id, o.status, o.expires_at, o.version,
        t.id AS ticket_id, t.title, t.price_cents, t.user_id AS seller_id,
        t.version AS ticket_version, t.order_id AS holder_id,
        p.status AS payment_status, p.stripe_id AS payment_stripe_id
    FROM orders o JOIN tickets t ON t.id = o.ticket_id
    LEFT JOIN order_payments p ON p.order_id = o.id";

/// Up to `limit` orders awaiting payment past `?1`, earliest deadline first.
fn overdue_query(limit: u32) -> String {
    format!(
        "{SELECT_ORDERS} WHERE o.status = 'created' AND o.expires_at <= ?1 \
         ORDER BY o.expires_at LIMIT {limit}"
    )
}

/// Why an order could not be inserted.
#[derive(Debug)]
pub enum InsertError {
    /// Another order in status `created` or `complete` holds the ticket (possibly one
    /// inserted a moment ago by a concurrent request).
    Reserved,
    /// Anything else.
    Other(anyhow::Error),
}

impl From<anyhow::Error> for InsertError {
    fn from(err: anyhow::Error) -> Self {
        Self::Other(err)
    }
}

/// Where orders and the ticket replica live.
pub trait OrderStore {
    /// The replica of ticket `id`.
    fn ticket(&self, id: &str) -> anyhow::Result<Option<Ticket>>;

    /// Stores `incoming` as its ticket's replica when [`Ticket::replace`] says so,
    /// atomically; whether it was stored.
    fn replicate_ticket(&self, incoming: Ticket) -> anyhow::Result<bool>;

    /// The order `id`, with its ticket.
    fn order(&self, id: &OrderId) -> anyhow::Result<Option<Order>>;

    /// The orders of buyer `user_id`, oldest first.
    fn orders_of(&self, user_id: &str) -> anyhow::Result<Vec<Order>>;

    /// Inserts a new `order` placed at `now` and queues its [`Order::event`]
    /// (`order:created`), in one transaction. [`InsertError::Reserved`] when another
    /// order holds the ticket: the store decides this atomically.
    fn insert_order(&self, order: &Order, now: u64) -> Result<(), InsertError>;

    /// Replaces `previous` with `updated` (its next version) and queues
    /// `updated.event()`, in one transaction, but only if the stored order is still
    /// `previous` (same status and version). `false` when a concurrent change got there
    /// first; then nothing is written.
    fn update_order(&self, previous: &Order, updated: &Order, now: u64) -> anyhow::Result<bool>;

    /// Up to `limit` orders still `created` whose deadline is at or before `cutoff`.
    fn overdue_orders(&self, cutoff: u64, limit: u32) -> anyhow::Result<Vec<Order>>;

    /// Applies a payments event to the payment shown on order `id` ([`Payment::apply`]),
    /// atomically; whether it changed anything, or `None` (nothing written) when there is
    /// no such order.
    fn apply_payment(&self, id: &OrderId, event: PaymentEvent<'_>) -> anyhow::Result<Option<bool>>;

    /// Queues `order`'s event once more (same version), for consumers that may have
    /// missed it; they ignore a duplicate.
    fn announce_again(&self, order: &Order, now: u64) -> anyhow::Result<()>;
}

impl<S: OrderStore + ?Sized> OrderStore for &S {
    fn ticket(&self, id: &str) -> anyhow::Result<Option<Ticket>> {
        (**self).ticket(id)
    }

    fn replicate_ticket(&self, incoming: Ticket) -> anyhow::Result<bool> {
        (**self).replicate_ticket(incoming)
    }

    fn order(&self, id: &OrderId) -> anyhow::Result<Option<Order>> {
        (**self).order(id)
    }

    fn orders_of(&self, user_id: &str) -> anyhow::Result<Vec<Order>> {
        (**self).orders_of(user_id)
    }

    fn insert_order(&self, order: &Order, now: u64) -> Result<(), InsertError> {
        (**self).insert_order(order, now)
    }

    fn update_order(&self, previous: &Order, updated: &Order, now: u64) -> anyhow::Result<bool> {
        (**self).update_order(previous, updated, now)
    }

    fn overdue_orders(&self, cutoff: u64, limit: u32) -> anyhow::Result<Vec<Order>> {
        (**self).overdue_orders(cutoff, limit)
    }

    fn apply_payment(&self, id: &OrderId, event: PaymentEvent<'_>) -> anyhow::Result<Option<bool>> {
        (**self).apply_payment(id, event)
    }

    fn announce_again(&self, order: &Order, now: u64) -> anyhow::Result<()> {
        (**self).announce_again(order, now)
    }
}

/// [`OrderStore`] on a sqlite [`Database`]; the outbox lives in the same database.
pub struct SqliteOrders<D = Connection> {
    db: D,
}

impl SqliteOrders {
    /// Opens the `orders` database, and what the entry point owes its outbox.
    pub fn open() -> anyhow::Result<(Self, Relay)> {
        let db = sqlite::open(DATABASE)?;
        let relay = Relay::open(&db, &SCHEMA).context("Failed to open the orders database")?;
        Ok((Self { db }, relay))
    }
}

impl<D: Database> SqliteOrders<D> {
    /// The store on `db`, creating the tables (and the outbox) if needed.
    pub fn new(db: D) -> anyhow::Result<Self> {
        sqlite::migrate(&db, &SCHEMA).context("Failed to create the orders schema")?;
        Ok(Self { db })
    }

    /// The database, for relaying the outbox.
    pub fn db(&self) -> &D {
        &self.db
    }

    fn select_orders(&self, filter: &str, param: &str) -> anyhow::Result<Vec<Order>> {
        let sql = format!("{SELECT_ORDERS} WHERE {filter} ORDER BY o.created_at, o.rowid");
        let result = self
            .db
            .query(&sql, &[text(param)])
            .context("Failed to read orders")?;
        take_rows(result)
            .map(|mut row| order_from(&mut row))
            .collect()
    }

    /// Queues the event announcing `order`, in the open transaction.
    fn enqueue(&self, order: &Order, now: u64) -> anyhow::Result<()> {
        outbox::enqueue(&self.db, &order.event(), EVENT_SOURCE, now)
            .with_context(|| format!("Failed to queue the event of order {}", order.id))
    }
}

impl<D: Database> OrderStore for SqliteOrders<D> {
    fn overdue_orders(&self, cutoff: u64, limit: u32) -> anyhow::Result<Vec<Order>> {
        let sql = overdue_query(limit);
        let result = self
            .db
            .query(&sql, &[integer(cutoff)?])
            .context("Failed to read overdue orders")?;
        take_rows(result)
            .map(|mut row| order_from(&mut row))
            .collect()
    }

    fn ticket(&self, id: &str) -> anyhow::Result<Option<Ticket>> {
        let result = self
            .db
            .query(
                "SELECT id, title, price_cents, user_id, version, order_id
                 FROM tickets WHERE id = ?",
                &[text(id)],
            )
            .context("Failed to read a ticket")?;
        take_rows(result)
            .next()
            .map(|mut row| ticket_from(&mut row))
            .transpose()
    }

    fn replicate_ticket(&self, incoming: Ticket) -> anyhow::Result<bool> {
        sqlite::transaction(&self.db, || {
            let current = self.ticket(&incoming.id)?;
            let Some(ticket) = Ticket::replace(current.as_ref(), incoming) else {
                return Ok(false);
            };
            let params = [
                text(ticket.id.as_str()),
                text(ticket.title.as_str()),
                integer(ticket.price_cents)?,
                text(ticket.user_id.as_str()),
                integer(ticket.version)?,
                ticket.order_id.map_or(Value::Null, text),
            ];
            self.db
                .query(
                    "INSERT OR REPLACE INTO tickets
                        (id, title, price_cents, user_id, version, order_id)
                     VALUES (?, ?, ?, ?, ?, ?)",
                    &params,
                )
                .context("Failed to store a ticket")?;
            Ok(true)
        })
    }

    fn order(&self, id: &OrderId) -> anyhow::Result<Option<Order>> {
        Ok(self
            .select_orders("o.id = ?", id.as_ref())?
            .into_iter()
            .next())
    }

    fn orders_of(&self, user_id: &str) -> anyhow::Result<Vec<Order>> {
        self.select_orders("o.user_id = ?", user_id)
    }

    fn insert_order(&self, order: &Order, now: u64) -> Result<(), InsertError> {
        let params = [
            text(order.id.as_ref()),
            text(order.user_id.as_str()),
            text(order.ticket.id.as_str()),
            text(order.status.as_str()),
            integer(order.expires_at.unix_seconds())?,
            integer(order.version)?,
            integer(now)?,
        ];
        sqlite::transaction(&self.db, || {
            self.db
                .execute(
                    "INSERT INTO orders
                        (id, user_id, ticket_id, status, expires_at, version, created_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                    &params,
                )
                .map_err(|err| {
                    // Order ids are random UUIDs, so the only unique rule that can fail
                    // is one holder per ticket.
                    if sqlite::is_unique_violation(&err) {
                        InsertError::Reserved
                    } else {
                        InsertError::Other(
                            sqlite::describe(err).context("Failed to insert an order"),
                        )
                    }
                })?;
            self.enqueue(order, now)?;
            Ok(())
        })
    }

    fn apply_payment(&self, id: &OrderId, event: PaymentEvent<'_>) -> anyhow::Result<Option<bool>> {
        sqlite::transaction(&self.db, || {
            let Some(order) = self.order(id)? else {
                return Ok(None);
            };
            let Some(payment) = Payment::apply(order.payment.as_ref(), event) else {
                return Ok(Some(false));
            };
            self.db
                .query(
                    "INSERT OR REPLACE INTO order_payments (order_id, status, stripe_id)
                     VALUES (?, ?, ?)",
                    &[
                        text(id.as_ref()),
                        text(payment.status.as_str()),
                        text(payment.stripe_id.as_str()),
                    ],
                )
                .context("Failed to store an order's payment")?;
            Ok(Some(true))
        })
    }

    fn announce_again(&self, order: &Order, now: u64) -> anyhow::Result<()> {
        sqlite::transaction(&self.db, || self.enqueue(order, now))
    }

    fn update_order(&self, previous: &Order, updated: &Order, now: u64) -> anyhow::Result<bool> {
        let params = [
            text(updated.status.as_str()),
            integer(updated.version)?,
            text(previous.id.as_ref()),
            text(previous.status.as_str()),
            integer(previous.version)?,
        ];
        sqlite::transaction(&self.db, || {
            let changed = self
                .db
                .query(
                    "UPDATE orders SET status = ?, version = ?
                     WHERE id = ? AND status = ? AND version = ?
                     RETURNING id",
                    &params,
                )
                .context("Failed to update an order")?;
            if changed.rows.is_empty() {
                return Ok(false);
            }
            self.enqueue(updated, now)?;
            Ok(true)
        })
    }
}

fn ticket_from(row: &mut OwnedRow) -> anyhow::Result<Ticket> {
    Ok(Ticket {
        id: row.take_text("id")?,
        title: row.take_text("title")?,
        price_cents: row.u64("price_cents")?,
        user_id: row.take_text("user_id")?,
        version: row.u64("version")?,
        order_id: row.take_opt_text("order_id")?,
    })
}

fn order_from(row: &mut OwnedRow) -> anyhow::Result<Order> {
    let id = row.take_text("id")?;
    let corrupt = || format!("Stored order {id:?} is corrupt");
    Ok(Order {
        id: OrderId::parse(&id).with_context(|| format!("{}: malformed id", corrupt()))?,
        user_id: row.take_text("user_id")?,
        status: row
            .take_text("status")?
            .parse::<OrderStatus>()
            .with_context(corrupt)?,
        expires_at: ExpiresAt::from_unix_seconds(row.u64("expires_at")?),
        version: row.u64("version")?,
        ticket: Ticket {
            id: row.take_text("ticket_id")?,
            title: row.take_text("title")?,
            price_cents: row.u64("price_cents")?,
            user_id: row.take_text("seller_id")?,
            version: row.u64("ticket_version")?,
            order_id: row.take_opt_text("holder_id")?,
        },
        payment: payment_from(row).with_context(corrupt)?,
    })
}

/// The order's payment columns (both NULL when it has none).
fn payment_from(row: &mut OwnedRow) -> anyhow::Result<Option<Payment>> {
    let Some(status) = row.take_opt_text("payment_status")? else {
        return Ok(None);
    };
    Ok(Some(Payment {
        status: PaymentStatus::parse(&status)
            .ok_or_else(|| anyhow::anyhow!("unknown payment status {status:?}"))?,
        stripe_id: row.take_text("payment_stripe_id")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NOW, TestStore, outbox, put_ticket, store};
    use common::events::Event;

    fn placed(store: &TestStore, user: &str, ticket: &str) -> Order {
        let ticket = store.ticket(ticket).unwrap().unwrap();
        let order = Order::place(user, ticket, ExpiresAt::from_unix_seconds(NOW + 60));
        store.insert_order(&order, NOW).unwrap();
        order
    }

    #[test]
    fn orders_round_trip_with_their_ticket() {
        let store = store();
        put_ticket(&store, "t1", 1099);
        let order = placed(&store, "buyer", "t1");
        assert_eq!(store.order(&order.id).unwrap(), Some(order.clone()));
        assert_eq!(store.orders_of("buyer").unwrap(), [order]);
        assert!(store.orders_of("seller").unwrap().is_empty());
        assert!(store.order(&OrderId::generate()).unwrap().is_none());
    }

    #[test]
    fn the_expiry_backstop_reads_only_orders_awaiting_payment() {
        let store = store();
        let plan = store
            .db()
            .query(
                &format!("EXPLAIN QUERY PLAN {}", overdue_query(50)),
                &[integer(NOW).unwrap()],
            )
            .unwrap();
        let steps: Vec<String> = take_rows(plan)
            .map(|mut row| row.take_text("detail").unwrap())
            .collect();
        assert!(
            steps
                .iter()
                .any(|s| s.contains("USING INDEX orders_awaiting_payment_by_deadline")),
            "{steps:?}"
        );
        assert!(!steps.iter().any(|s| s.starts_with("SCAN o")), "{steps:?}");
    }

    #[test]
    fn one_holder_per_ticket() {
        let store = store();
        put_ticket(&store, "t1", 1099);
        let first = placed(&store, "a", "t1");
        let second = Order::place("b", first.ticket.clone(), first.expires_at);
        assert!(matches!(
            store.insert_order(&second, NOW),
            Err(InsertError::Reserved)
        ));

        // A cancelled order no longer holds it; a complete one does.
        store
            .update_order(&first, &first.with_status(OrderStatus::Cancelled), NOW)
            .unwrap();
        store.insert_order(&second, NOW).unwrap();
        store
            .update_order(&second, &second.with_status(OrderStatus::Complete), NOW)
            .unwrap();
        let third = Order::place("c", first.ticket.clone(), first.expires_at);
        assert!(matches!(
            store.insert_order(&third, NOW),
            Err(InsertError::Reserved)
        ));
        // Each write queued its event; the refused inserts queued nothing.
        let channels: Vec<&str> = outbox(&store).iter().map(Event::channel).collect();
        assert_eq!(
            channels,
            [
                "order:created",
                "order:cancelled",
                "order:created",
                "order:completed"
            ]
        );
    }

    #[test]
    fn updates_only_land_on_the_version_they_were_decided_on() {
        let store = store();
        put_ticket(&store, "t1", 1099);
        let order = placed(&store, "a", "t1");
        let paid = order.with_status(OrderStatus::Complete);
        assert!(store.update_order(&order, &paid, NOW).unwrap());

        // A decision taken on the stale version loses, writes and queues nothing.
        let cancelled = order.with_status(OrderStatus::Cancelled);
        assert!(!store.update_order(&order, &cancelled, NOW).unwrap());
        assert_eq!(store.order(&order.id).unwrap(), Some(paid));
        assert_eq!(outbox(&store).len(), 2);
    }

    #[test]
    fn the_replica_takes_only_newer_versions() {
        let store = store();
        let ticket = |version, title: &str| Ticket {
            id: "t1".into(),
            title: title.into(),
            price_cents: 100,
            user_id: "seller".into(),
            version,
            order_id: (version % 2 == 1).then(|| "o1".to_owned()),
        };
        assert!(store.replicate_ticket(ticket(1, "one")).unwrap());
        assert!(!store.replicate_ticket(ticket(0, "zero")).unwrap());
        assert!(!store.replicate_ticket(ticket(1, "one again")).unwrap());
        assert!(store.replicate_ticket(ticket(2, "two")).unwrap());
        assert_eq!(store.ticket("t1").unwrap(), Some(ticket(2, "two")));
        assert!(store.replicate_ticket(ticket(3, "three")).unwrap());
        assert_eq!(store.ticket("t1").unwrap(), Some(ticket(3, "three")));
        assert!(outbox(&store).is_empty(), "replicas publish nothing");
    }

    #[test]
    fn corrupt_rows_are_errors() {
        let store = store();
        put_ticket(&store, "t1", 1099);
        let order = placed(&store, "a", "t1");
        store
            .db()
            .query("UPDATE orders SET version = -1", &[])
            .unwrap();
        assert!(store.order(&order.id).is_err());
        store
            .db()
            .query("UPDATE orders SET id = 'nope', version = 0", &[])
            .unwrap();
        let err = store.orders_of("a").unwrap_err();
        assert!(format!("{err:#}").contains("malformed id"), "{err:#}");
    }
}
