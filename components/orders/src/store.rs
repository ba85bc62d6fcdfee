//! Orders and the ticket replica in the Spin sqlite database `orders`.
//!
//! Handlers and event consumers see only [`OrderStore`], so they are tested natively
//! with an in-memory store; [`SqliteOrders`] is the one implementation that talks to
//! Spin. Every write of an order and the event announcing it are committed together:
//! the event goes into the outbox table (`common::outbox`) in the same transaction and
//! is relayed to Redis after the commit.

use anyhow::{Context, anyhow};
use common::outbox;
use spin_sdk::sqlite3::{Connection, Error as SqliteError, QueryResult, Value};

use crate::domain::{ExpiresAt, Order, OrderId, OrderStatus, Ticket};

/// Database label; must be listed in the component's `sqlite_databases` and, being
/// other than `default`, declared in the runtime config.
pub const DATABASE: &str = "orders";

/// The schema, one statement each (Spin's `execute` runs a single statement).
///
/// `orders_one_holder_per_ticket` is what makes reserving atomic: at most one order in
/// a status that holds its ticket (`created`, `complete`; see
/// [`crate::domain::Lifecycle::holds_ticket`]) per ticket, however many instances insert at once.
const SCHEMA: &[&str] = &[
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
];

/// An order row joined with its ticket's replica.
const SELECT_ORDERS: &str = "SELECT o.id, o.user_id, o.status, o.expires_at, o.version,
        t.id AS ticket_id, t.title, t.price_cents, t.user_id AS seller_id,
        t.version AS ticket_version, t.order_id AS holder_id
    FROM orders o JOIN tickets t ON t.id = o.ticket_id";

const SELECT_TICKET: &str =
    "SELECT id, title, price_cents, user_id, version, order_id FROM tickets WHERE id = ?";

/// Why an order could not be inserted.
#[derive(Debug)]
pub enum InsertError {
    /// Another order in status `created` or `complete` holds the ticket (possibly
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

    /// Stores `incoming` as the replica of its ticket when [`Ticket::replace`] says so,
    /// atomically; whether it was stored.
    fn replicate_ticket(&self, incoming: Ticket) -> anyhow::Result<bool>;

    /// The order `id`, with its ticket.
    fn order(&self, id: &OrderId) -> anyhow::Result<Option<Order>>;

    /// The orders of buyer `user_id`, oldest first.
    fn orders_of(&self, user_id: &str) -> anyhow::Result<Vec<Order>>;

    /// Inserts a new `order` placed at `now` and queues [`Order::event`]
    /// (`order:created`), in one transaction. Refused with [`InsertError::Reserved`] when
    /// another order holds the ticket: the store enforces this atomically.
    fn insert_order(&self, order: &Order, now: u64) -> Result<(), InsertError>;

    /// Replaces `previous` with `updated` (its next version) and queues
    /// `updated.event()`, in one transaction, only if the stored order is still
    /// `previous` (same status and version). `false` when a concurrent change got there
    /// first: then nothing is written.
    fn update_order(&self, previous: &Order, updated: &Order) -> anyhow::Result<bool>;
}

/// [`OrderStore`] on Spin's sqlite (`spin:sqlite@3.0.0`), with the outbox in the same
/// database.
pub struct SqliteOrders(Connection);

impl SqliteOrders {
    /// Opens the `orders` database and creates the tables on first use.
    pub fn open() -> anyhow::Result<Self> {
        let conn = Connection::open(DATABASE)
            .map_err(describe)
            .with_context(|| format!("Failed to open sqlite database `{DATABASE}`"))?;
        for statement in SCHEMA {
            conn.execute(statement, &[])
                .map_err(describe)
                .context("Failed to create the orders schema")?;
        }
        outbox::migrate(&conn).context("Failed to create the outbox")?;
        Ok(Self(conn))
    }

    /// The connection, for relaying the outbox.
    pub fn connection(&self) -> &Connection {
        &self.0
    }

    fn execute(&self, sql: &str, params: &[Value]) -> Result<QueryResult, SqliteError> {
        self.0.execute(sql, params)
    }

    /// Runs `work` in a `BEGIN IMMEDIATE` transaction: committed when it returns `Ok`,
    /// rolled back otherwise. IMMEDIATE takes the write lock up front, so concurrent
    /// writers queue on the busy timeout instead of failing halfway.
    fn transaction<T, E: From<anyhow::Error>>(
        &self,
        work: impl FnOnce(&Self) -> Result<T, E>,
    ) -> Result<T, E> {
        self.execute("BEGIN IMMEDIATE", &[])
            .map_err(describe)
            .context("Failed to begin a transaction")?;
        let result = work(self);
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        if let Err(err) = self.execute(end, &[]) {
            let err = describe(err).context(format!("Failed to {end}"));
            if result.is_ok() {
                // Leave no half-open transaction behind on this connection.
                let _ = self.execute("ROLLBACK", &[]);
                return Err(err.into());
            }
            eprintln!("{err:#}");
        }
        result
    }

    fn select_ticket(&self, id: &str) -> anyhow::Result<Option<Ticket>> {
        let result = self
            .execute(SELECT_TICKET, &[text(id)])
            .map_err(describe)
            .context("Failed to read a ticket")?;
        result.rows().next().map(|row| ticket_from(&row)).transpose()
    }

    fn select_orders(&self, filter: &str, param: &str) -> anyhow::Result<Vec<Order>> {
        let sql = format!("{SELECT_ORDERS} WHERE {filter} ORDER BY o.created_at, o.rowid");
        let result = self
            .execute(&sql, &[text(param)])
            .map_err(describe)
            .context("Failed to read orders")?;
        result.rows().map(|row| order_from(&row)).collect()
    }
}

impl OrderStore for SqliteOrders {
    fn ticket(&self, id: &str) -> anyhow::Result<Option<Ticket>> {
        self.select_ticket(id)
    }

    fn replicate_ticket(&self, incoming: Ticket) -> anyhow::Result<bool> {
        self.transaction(|db| {
            let current = db.select_ticket(&incoming.id)?;
            let Some(ticket) = Ticket::replace(current.as_ref(), incoming) else {
                return Ok(false);
            };
            let params = [
                text(&ticket.id),
                text(&ticket.title),
                integer(ticket.price_cents)?,
                text(&ticket.user_id),
                integer(ticket.version)?,
                ticket.order_id.as_deref().map_or(Value::Null, text),
            ];
            db.execute(
                "INSERT OR REPLACE INTO tickets (id, title, price_cents, user_id, version, order_id)
                 VALUES (?, ?, ?, ?, ?, ?)",
                &params,
            )
            .map_err(describe)
            .context("Failed to store a ticket")?;
            Ok(true)
        })
    }

    fn order(&self, id: &OrderId) -> anyhow::Result<Option<Order>> {
        Ok(self.select_orders("o.id = ?", id.as_ref())?.into_iter().next())
    }

    fn orders_of(&self, user_id: &str) -> anyhow::Result<Vec<Order>> {
        self.select_orders("o.user_id = ?", user_id)
    }

    fn insert_order(&self, order: &Order, now: u64) -> Result<(), InsertError> {
        let params = [
            text(order.id.as_ref()),
            text(&order.user_id),
            text(&order.ticket.id),
            text(order.status.as_str()),
            integer(order.expires_at.unix_seconds())?,
            integer(order.version)?,
            integer(now)?,
        ];
        self.transaction(|db| {
            db.execute(
                "INSERT INTO orders (id, user_id, ticket_id, status, expires_at, version, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
                &params,
            )
            .map_err(|err| match err {
                SqliteError::Io(message) if is_unique_violation(&message) => InsertError::Reserved,
                other => InsertError::Other(describe(other).context("Failed to insert an order")),
            })?;
            enqueue(db, order)?;
            Ok(())
        })
    }

    fn update_order(&self, previous: &Order, updated: &Order) -> anyhow::Result<bool> {
        let params = [
            text(updated.status.as_str()),
            integer(updated.version)?,
            text(previous.id.as_ref()),
            text(previous.status.as_str()),
            integer(previous.version)?,
        ];
        self.transaction(|db| {
            db.execute(
                "UPDATE orders SET status = ?, version = ? WHERE id = ? AND status = ? AND version = ?",
                &params,
            )
            .map_err(describe)
            .context("Failed to update an order")?;
            if db.0.changes() == 0 {
                return Ok(false);
            }
            enqueue(db, updated)?;
            Ok(true)
        })
    }
}

/// Queues the event announcing `order` in the open transaction.
fn enqueue(db: &SqliteOrders, order: &Order) -> anyhow::Result<()> {
    outbox::enqueue(&db.0, &order.event())
        .with_context(|| format!("Failed to queue the event of order {}", order.id))
}

/// Whether a sqlite error message reports a UNIQUE (or primary key) violation.
///
/// On `orders` that is the one-holder-per-ticket index (ids are random UUIDs). Hosts
/// pass SQLite's message through as `io(string)`, e.g. "UNIQUE constraint failed:
/// orders.ticket_id".
pub fn is_unique_violation(message: &str) -> bool {
    message.contains("UNIQUE constraint failed")
}

fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

fn integer(value: u64) -> anyhow::Result<Value> {
    i64::try_from(value)
        .map(Value::Integer)
        .map_err(|_| anyhow!("{value} does not fit in a sqlite integer"))
}

type Row<'a> = spin_sdk::sqlite3::Row<'a>;

fn text_column(row: &Row<'_>, column: &str) -> anyhow::Result<String> {
    row.get::<&str>(column)
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("Column `{column}` is not text"))
}

fn count_column(row: &Row<'_>, column: &str) -> anyhow::Result<u64> {
    row.get::<u64>(column)
        .ok_or_else(|| anyhow!("Column `{column}` is not a non-negative integer"))
}

fn ticket_from(row: &Row<'_>) -> anyhow::Result<Ticket> {
    Ok(Ticket {
        id: text_column(row, "id")?,
        title: text_column(row, "title")?,
        price_cents: count_column(row, "price_cents")?,
        user_id: text_column(row, "user_id")?,
        version: count_column(row, "version")?,
        order_id: row.get::<&str>("order_id").map(str::to_owned),
    })
}

fn order_from(row: &Row<'_>) -> anyhow::Result<Order> {
    let id = text_column(row, "id")?;
    let status = text_column(row, "status")?;
    Ok(Order {
        id: OrderId::parse(&id).ok_or_else(|| anyhow!("Stored order id {id:?} is malformed"))?,
        user_id: text_column(row, "user_id")?,
        status: status
            .parse::<OrderStatus>()
            .with_context(|| format!("Order {id} has a bad status"))?,
        expires_at: ExpiresAt::from_unix_seconds(count_column(row, "expires_at")?),
        version: count_column(row, "version")?,
        ticket: Ticket {
            id: text_column(row, "ticket_id")?,
            title: text_column(row, "title")?,
            price_cents: count_column(row, "price_cents")?,
            user_id: text_column(row, "seller_id")?,
            version: count_column(row, "ticket_version")?,
            order_id: row.get::<&str>("holder_id").map(str::to_owned),
        },
    })
}

fn describe(err: SqliteError) -> anyhow::Error {
    match err {
        SqliteError::NoSuchDatabase => anyhow!("no such database (is it in the runtime config?)"),
        SqliteError::AccessDenied => {
            anyhow!("access denied (is it in the component's sqlite_databases?)")
        }
        SqliteError::InvalidConnection => anyhow!("invalid connection"),
        SqliteError::DatabaseFull => anyhow!("database full"),
        SqliteError::Io(message) => anyhow!("{message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spin_sdk::sqlite3::RowResult;

    const ORDER_COLUMNS: [&str; 11] = [
        "id",
        "user_id",
        "status",
        "expires_at",
        "version",
        "ticket_id",
        "title",
        "price_cents",
        "seller_id",
        "ticket_version",
        "holder_id",
    ];
    const ORDER_ID: &str = "a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8";

    fn order_row(status: &str, holder: Value) -> QueryResult {
        QueryResult {
            columns: ORDER_COLUMNS.iter().map(|c| (*c).to_owned()).collect(),
            rows: vec![RowResult {
                values: vec![
                    text(ORDER_ID),
                    text("buyer"),
                    text(status),
                    Value::Integer(1_795_514_580),
                    Value::Integer(1),
                    text("t1"),
                    text("Concert"),
                    Value::Integer(1099),
                    text("seller"),
                    Value::Integer(2),
                    holder,
                ],
            }],
        }
    }

    #[test]
    fn unique_violations_are_recognised() {
        assert!(is_unique_violation(
            "UNIQUE constraint failed: orders.ticket_id"
        ));
        assert!(!is_unique_violation("database is locked"));
        assert!(!is_unique_violation(
            "CHECK constraint failed: status IN ('created')"
        ));
    }

    #[test]
    fn rows_become_orders_with_their_ticket() {
        let result = order_row("complete", text(ORDER_ID));
        let order = order_from(&result.rows().next().unwrap()).unwrap();
        assert_eq!(order.id.as_ref(), ORDER_ID);
        assert_eq!(order.status, OrderStatus::Complete);
        assert_eq!(order.expires_at.to_rfc3339(), "2026-11-24T10:03:00Z");
        assert_eq!(order.version, 1);
        assert_eq!(
            order.ticket,
            Ticket {
                id: "t1".into(),
                title: "Concert".into(),
                price_cents: 1099,
                user_id: "seller".into(),
                version: 2,
                order_id: Some(ORDER_ID.into()),
            }
        );

        let free = order_row("created", Value::Null);
        let order = order_from(&free.rows().next().unwrap()).unwrap();
        assert_eq!(order.ticket.order_id, None);
    }

    #[test]
    fn corrupt_rows_are_errors() {
        let result = order_row("paid", Value::Null);
        let err = order_from(&result.rows().next().unwrap()).unwrap_err();
        assert!(format!("{err:#}").contains("unknown order status `paid`"), "{err:#}");

        let mut result = order_row("created", Value::Null);
        result.rows[0].values[4] = Value::Integer(-1);
        assert!(order_from(&result.rows().next().unwrap()).is_err());
    }

    #[test]
    fn rows_become_tickets() {
        let result = QueryResult {
            columns: ["id", "title", "price_cents", "user_id", "version", "order_id"]
                .iter()
                .map(|c| (*c).to_owned())
                .collect(),
            rows: vec![RowResult {
                values: vec![
                    text("t1"),
                    text("Concert"),
                    Value::Integer(500),
                    text("seller"),
                    Value::Integer(0),
                    Value::Null,
                ],
            }],
        };
        let ticket = ticket_from(&result.rows().next().unwrap()).unwrap();
        assert_eq!((ticket.price_cents, ticket.order_id), (500, None));
    }

    #[test]
    fn integers_must_fit_sqlite() {
        assert!(matches!(integer(7).unwrap(), Value::Integer(7)));
        assert!(integer(u64::MAX).is_err());
    }
}
