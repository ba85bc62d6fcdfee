//! The payments database (Spin sqlite label `payments`): the order replica, the
//! PaymentIntents created, the orders' Stripe Customers, the payment attempts in
//! flight, the recorded payments, the charges to give back ([`refunds`]), and the
//! outbox, so a payment and its `payment:created` are committed together, and so is a
//! refund with the fact that calls for it.
//!
//! [`Payments`] is written against [`Database`], so the same SQL runs on Spin's
//! connection and, in native tests, on an in-memory sqlite.

use anyhow::{Context, anyhow};
use common::events::{Event, OrderStatus};
use common::outbox::{self, Relay};
use common::sqlite::{
    self, Connection, Database, Row, Schema, Value, get_text, get_u64, integer, text, transaction,
};

use crate::domain::{Change, Order, OrderId, Payment, RefundReason, Terms};

/// Database label; must be listed in the component's `sqlite_databases` and declared
/// in the runtime config.
pub const DATABASE: &str = "payments";

/// The `source` of the events this service publishes.
pub const SOURCE: &str = "/tessera/payments";

/// How long a payment attempt keeps other attempts on its order away: longer than a
/// request may run (the host's default timeout is 30 s), so only an attempt whose
/// instance died loses its claim early.
pub const ATTEMPT_LEASE_SECONDS: u64 = 60;

/// The tables ([`sqlite::Schema`]: applied once per database).
pub const SCHEMA: Schema = Schema {
    migrations: &[V1, V2],
};

/// The first schema, one statement per entry (hosts run a single statement per call).
const V1: &[&str] = &[
    // Terms (user_id, price_cents, expires_at) are NULL until `order:created` arrives,
    // when a status event overtook it.
    "CREATE TABLE IF NOT EXISTS orders (
        id TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('created', 'cancelled', 'complete')),
        user_id TEXT,
        price_cents INTEGER,
        expires_at INTEGER
    )",
    // At most one payment per order, and a PaymentIntent pays for one order only.
    "CREATE TABLE IF NOT EXISTS payments (
        id TEXT PRIMARY KEY,
        order_id TEXT NOT NULL UNIQUE,
        stripe_id TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL
    )",
    // Every PaymentIntent created here, so a follow-up call or a webhook finds its order.
    "CREATE TABLE IF NOT EXISTS intents (
        stripe_id TEXT PRIMARY KEY,
        order_id TEXT NOT NULL,
        created_at INTEGER NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS intents_by_order ON intents (order_id, created_at)",
    // The Stripe Customer of an order (see `remember_customer`): its SetupIntents attach
    // the buyer's card to it, and the PaymentIntent charging that card must name it.
    "CREATE TABLE IF NOT EXISTS customers (
        order_id TEXT PRIMARY KEY,
        stripe_id TEXT NOT NULL,
        created_at INTEGER NOT NULL
    )",
    // The payment attempt in flight per order (see `claim_attempt`): `charging` while a
    // request waits for Stripe; `held` once its PaymentIntent exists and may still
    // succeed (the buyer authenticates the card, or recording it failed).
    "CREATE TABLE IF NOT EXISTS attempts (
        order_id TEXT PRIMARY KEY,
        idempotency_key TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('charging', 'held')),
        lease_until INTEGER NOT NULL
    )",
    // Charges to give back (see `domain::refund`), one per PaymentIntent; `refund_id`
    // is set once Stripe made the refund, in the transaction that queues
    // `payment:refunded`. `next_attempt_at` is when the next try is due (also the
    // lease of a try in flight).
    "CREATE TABLE IF NOT EXISTS refunds (
        stripe_id TEXT PRIMARY KEY,
        payment_id TEXT NOT NULL,
        order_id TEXT NOT NULL,
        reason TEXT NOT NULL CHECK (reason IN ('order_cancelled', 'already_paid')),
        refund_id TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS refunds_due ON refunds (next_attempt_at) WHERE refund_id IS NULL",
    outbox::SCHEMA,
    outbox::META_SCHEMA,
];

/// The trace context of whatever queued a refund (`common::trace`; NULL: none), so its
/// `payment:refunded`, made later or by another request's worker run, continues the
/// trace of the cancellation or payment that called for it.
const V2: &[&str] = &["ALTER TABLE refunds ADD COLUMN traceparent TEXT"];

/// The result of [`Payments::claim_attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The order is ours to charge with this key until the lease ends.
    Claimed,
    /// Another request is charging this order right now (with any key): its outcome
    /// decides what this one should do, so wait and claim again.
    Charging,
    /// Another key's PaymentIntent holds the order (see [`Payments::hold_attempt`]).
    Busy,
    /// A payment is already recorded.
    Paid(Payment),
    /// The replica says the order is cancelled: nothing to charge.
    Cancelled,
}

/// The result of [`Payments::record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Stored now, and `payment:created` queued.
    New(Payment),
    /// The order already had this payment; nothing written.
    Existing(Payment),
    /// Stored now and `payment:created` queued, but the replica says the order is
    /// cancelled: the charge is queued for a refund.
    Refunding(Payment),
    /// Another charge already pays for the order (`kept`): this one is queued for a
    /// refund, and nothing else is written.
    Duplicate {
        /// The order's payment, which stays.
        kept: Payment,
    },
}

/// The payments database.
pub struct Payments<D> {
    db: D,
}

impl Payments<Connection> {
    /// Opens the `payments` database, and what the entry point owes its outbox.
    pub fn open() -> anyhow::Result<(Self, Relay)> {
        let db = sqlite::open(DATABASE)?;
        let relay = Relay::open(&db, &SCHEMA).context("Failed to open the payments database")?;
        Ok((Self { db }, relay))
    }
}

impl<D: Database> Payments<D> {
    /// The store on `db`, creating the tables on first use.
    pub fn new(db: D) -> anyhow::Result<Self> {
        sqlite::migrate(&db, &SCHEMA).context("Failed to create the payments schema")?;
        Ok(Self { db })
    }

    /// The connection, e.g. for relaying the outbox.
    pub fn db(&self) -> &D {
        &self.db
    }

    /// The replica of order `id`.
    pub fn order(&self, id: &OrderId) -> anyhow::Result<Option<Order>> {
        let result = self
            .db
            .query(
                "SELECT id, version, status, user_id, price_cents, expires_at
                 FROM orders WHERE id = ?",
                &[text(id.as_ref())],
            )
            .context("Failed to read an order")?;
        result.rows().next().map(|row| order_from(&row)).transpose()
    }

    /// Applies an order event to the replica ([`Order::apply`]), atomically; whether
    /// it changed anything. A replica that is (or already was: a re-announced
    /// cancellation) `cancelled` while a payment is recorded queues that payment's
    /// refund in the same transaction, once.
    pub fn replicate(&self, id: &OrderId, change: Change, now: u64) -> anyhow::Result<bool> {
        transaction(&self.db, || {
            let current = self.order(id)?;
            let changed = Order::apply(current.as_ref(), id, change);
            if let Some(order) = &changed {
                self.store_order(order)?;
            }
            let cancelled = changed
                .as_ref()
                .or(current.as_ref())
                .is_some_and(|order| order.status == OrderStatus::Cancelled);
            if cancelled && let Some(payment) = self.payment_of(id)? {
                self.queue_refund(&payment, RefundReason::OrderCancelled, now)?;
            }
            Ok(changed.is_some())
        })
    }

    fn store_order(&self, order: &Order) -> anyhow::Result<()> {
        let terms = order.terms.as_ref();
        let params = [
            text(order.id.as_ref()),
            integer(order.version)?,
            text(order.status.as_str()),
            terms.map_or(Value::Null, |t| text(t.user_id.as_str())),
            terms.map_or(Ok(Value::Null), |t| integer(t.price_cents))?,
            terms.map_or(Ok(Value::Null), |t| integer(t.expires_at))?,
        ];
        self.db
            .query(
                "INSERT OR REPLACE INTO orders
                    (id, version, status, user_id, price_cents, expires_at)
                 VALUES (?, ?, ?, ?, ?, ?)",
                &params,
            )
            .context("Failed to store an order")?;
        Ok(())
    }

    /// The payment recorded for `order_id`.
    pub fn payment_of(&self, order_id: &OrderId) -> anyhow::Result<Option<Payment>> {
        let result = self
            .db
            .query(
                "SELECT id, order_id, stripe_id FROM payments WHERE order_id = ?",
                &[text(order_id.as_ref())],
            )
            .context("Failed to read a payment")?;
        result
            .rows()
            .next()
            .map(|row| payment_from(&row))
            .transpose()
    }

    /// Claims `order_id` for charging with `key` until `now` + [`ATTEMPT_LEASE_SECONDS`].
    ///
    /// Refused while the order is paid, while another request is charging it (any key:
    /// two identical requests at once must not both reach Stripe, since a Stripe
    /// without idempotency, like localstripe, would charge twice), and while another
    /// key holds it. The same key may take over an attempt it holds (a retry: Stripe
    /// answers from its idempotency cache). A lease that ran out (its request died, or
    /// the buyer never finished) no longer counts.
    pub fn claim_attempt(&self, order_id: &OrderId, key: &str, now: u64) -> anyhow::Result<Claim> {
        transaction(&self.db, || {
            if let Some(payment) = self.payment_of(order_id)? {
                return Ok(Claim::Paid(payment));
            }
            // The cancellation may have arrived while this request waited its turn.
            if self
                .order(order_id)?
                .is_some_and(|order| order.status == OrderStatus::Cancelled)
            {
                return Ok(Claim::Cancelled);
            }
            let current = self
                .db
                .query(
                    "SELECT idempotency_key, state FROM attempts
                     WHERE order_id = ? AND lease_until > ?",
                    &[text(order_id.as_ref()), integer(now)?],
                )
                .context("Failed to read payment attempts")?;
            if let Some(row) = current.rows().next() {
                let state = get_text(&row, "state")?;
                if state == "charging" {
                    return Ok(Claim::Charging);
                }
                if get_text(&row, "idempotency_key")? != key {
                    return Ok(Claim::Busy);
                }
            }
            self.set_attempt(order_id, key, "charging", now)?;
            Ok(Claim::Claimed)
        })
    }

    /// The attempt `key` on `order_id` is done with Stripe but its PaymentIntent may
    /// still succeed (the buyer authenticates the card in the browser, or recording the
    /// payment failed): only a retry with the same key may continue it, other cards stay
    /// refused until the lease runs out.
    pub fn hold_attempt(&self, order_id: &OrderId, key: &str, now: u64) -> anyhow::Result<()> {
        self.set_attempt(order_id, key, "held", now)
    }

    fn set_attempt(
        &self,
        order_id: &OrderId,
        key: &str,
        state: &str,
        now: u64,
    ) -> anyhow::Result<()> {
        self.db
            .query(
                "INSERT OR REPLACE INTO attempts (order_id, idempotency_key, state, lease_until)
                 VALUES (?, ?, ?, ?)",
                &[
                    text(order_id.as_ref()),
                    text(key),
                    text(state),
                    integer(now.saturating_add(ATTEMPT_LEASE_SECONDS))?,
                ],
            )
            .context("Failed to store a payment attempt")?;
        Ok(())
    }

    /// Ends the attempt `key` on `order_id` (if it still holds the order).
    pub fn release_attempt(&self, order_id: &OrderId, key: &str) -> anyhow::Result<()> {
        self.db
            .query(
                "DELETE FROM attempts WHERE order_id = ? AND idempotency_key = ?",
                &[text(order_id.as_ref()), text(key)],
            )
            .context("Failed to release a payment attempt")?;
        Ok(())
    }

    /// Remembers that PaymentIntent `stripe_id` was created for `order_id`.
    pub fn remember_intent(
        &self,
        order_id: &OrderId,
        stripe_id: &str,
        now: u64,
    ) -> anyhow::Result<()> {
        // A replayed create (same idempotency key) returns the same intent: keep the first.
        self.db
            .query(
                "INSERT OR IGNORE INTO intents (stripe_id, order_id, created_at) VALUES (?, ?, ?)",
                &[text(stripe_id), text(order_id.as_ref()), integer(now)?],
            )
            .context("Failed to remember a PaymentIntent")?;
        Ok(())
    }

    /// The PaymentIntents created for `order_id`, newest first, at most `limit`.
    pub fn intents_of(&self, order_id: &OrderId, limit: u64) -> anyhow::Result<Vec<String>> {
        let result = self
            .db
            .query(
                "SELECT stripe_id FROM intents WHERE order_id = ?
                 ORDER BY created_at DESC, rowid DESC LIMIT ?",
                &[text(order_id.as_ref()), integer(limit)?],
            )
            .context("Failed to read PaymentIntents")?;
        result
            .rows()
            .map(|row| get_text(&row, "stripe_id"))
            .collect()
    }

    /// The order PaymentIntent `stripe_id` was created for here.
    pub fn intent_order(&self, stripe_id: &str) -> anyhow::Result<Option<OrderId>> {
        let result = self
            .db
            .query(
                "SELECT order_id FROM intents WHERE stripe_id = ?",
                &[text(stripe_id)],
            )
            .context("Failed to read a PaymentIntent")?;
        result
            .rows()
            .next()
            .map(|row| parse_order_id(&get_text(&row, "order_id")?))
            .transpose()
    }

    /// The Stripe Customer (`cus_…`) remembered for `order_id`.
    pub fn customer_of(&self, order_id: &OrderId) -> anyhow::Result<Option<String>> {
        let result = self
            .db
            .query(
                "SELECT stripe_id FROM customers WHERE order_id = ?",
                &[text(order_id.as_ref())],
            )
            .context("Failed to read a Stripe customer")?;
        result
            .rows()
            .next()
            .map(|row| get_text(&row, "stripe_id"))
            .transpose()
    }

    /// Remembers Customer `stripe_id` for `order_id` unless the order already has one,
    /// and returns the order's Customer: `stripe_id`, or the one remembered first (by a
    /// concurrent request that created its own), which everyone then uses.
    pub fn remember_customer(
        &self,
        order_id: &OrderId,
        stripe_id: &str,
        now: u64,
    ) -> anyhow::Result<String> {
        transaction(&self.db, || {
            self.db
                .query(
                    "INSERT OR IGNORE INTO customers (order_id, stripe_id, created_at)
                     VALUES (?, ?, ?)",
                    &[text(order_id.as_ref()), text(stripe_id), integer(now)?],
                )
                .context("Failed to remember a Stripe customer")?;
            self.customer_of(order_id)?
                .ok_or_else(|| anyhow!("The Stripe customer of order {order_id} vanished"))
        })
    }

    /// Records `payment` and queues `payment:created`, in one transaction, unless the
    /// order already has a payment. Also ends the order's payment attempt.
    ///
    /// Money is kept only for an order that completes, so in the same transaction:
    /// a payment of an order the replica knows as cancelled is queued for a refund
    /// ([`Recorded::Refunding`]), and so is a second charge of an order already paid
    /// ([`Recorded::Duplicate`]).
    pub fn record(&self, payment: &Payment, now: u64) -> anyhow::Result<Recorded> {
        transaction(&self.db, || -> anyhow::Result<Recorded> {
            if let Some(existing) = self.payment_of(&payment.order_id)? {
                if existing.stripe_id == payment.stripe_id {
                    return Ok(Recorded::Existing(existing));
                }
                // Two cards charged around the attempt lease, or a browser
                // confirmation raced a server-side charge.
                self.queue_refund(payment, RefundReason::AlreadyPaid, now)?;
                return Ok(Recorded::Duplicate { kept: existing });
            }
            self.db
                .query(
                    "INSERT INTO payments (id, order_id, stripe_id, created_at)
                     VALUES (?, ?, ?, ?)",
                    &[
                        text(payment.id.as_str()),
                        text(payment.order_id.as_ref()),
                        text(payment.stripe_id.as_str()),
                        integer(now)?,
                    ],
                )
                .context("Failed to record a payment")?;
            self.db
                .query(
                    "DELETE FROM attempts WHERE order_id = ?",
                    &[text(payment.order_id.as_ref())],
                )
                .context("Failed to end a payment attempt")?;
            outbox::enqueue(&self.db, &Event::from(payment.event()), SOURCE, now)
                .with_context(|| format!("Failed to queue the event of payment {}", payment.id))?;
            let cancelled = self
                .order(&payment.order_id)?
                .is_some_and(|order| order.status == OrderStatus::Cancelled);
            if cancelled {
                self.queue_refund(payment, RefundReason::OrderCancelled, now)?;
                return Ok(Recorded::Refunding(payment.clone()));
            }
            Ok(Recorded::New(payment.clone()))
        })
    }
}

fn parse_order_id(raw: &str) -> anyhow::Result<OrderId> {
    OrderId::parse(raw).ok_or_else(|| anyhow!("Stored order id {raw:?} is malformed"))
}

fn order_from(row: &Row<'_>) -> anyhow::Result<Order> {
    let id = parse_order_id(&get_text(row, "id")?)?;
    let corrupt = || format!("Stored order {id} is corrupt");
    let terms = match row.get::<&Value>("user_id") {
        Some(Value::Null) | None => None,
        Some(_) => Some(Terms {
            user_id: get_text(row, "user_id").with_context(corrupt)?,
            price_cents: get_u64(row, "price_cents").with_context(corrupt)?,
            expires_at: get_u64(row, "expires_at").with_context(corrupt)?,
        }),
    };
    Ok(Order {
        version: get_u64(row, "version").with_context(corrupt)?,
        status: get_text(row, "status")?
            .parse::<OrderStatus>()
            .with_context(corrupt)?,
        terms,
        id,
    })
}

fn payment_from(row: &Row<'_>) -> anyhow::Result<Payment> {
    Ok(Payment {
        id: get_text(row, "id")?,
        order_id: parse_order_id(&get_text(row, "order_id")?)?,
        stripe_id: get_text(row, "stripe_id")?,
    })
}

mod refunds;

pub use refunds::REFUND_LEASE_SECONDS;

#[cfg(test)]
mod tests;
