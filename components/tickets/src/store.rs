//! Tickets in the Spin sqlite database `tickets`, each change committed together with
//! its event in the outbox.
//!
//! [`Tickets`] is written against [`Database`], so the same SQL runs on Spin's
//! connection and, in native tests, on an in-memory sqlite. Every change is a read,
//! a domain decision and a write guarded by the version that was read, inside one
//! `BEGIN IMMEDIATE` transaction that also enqueues the `ticket:*` event.

use std::fmt;

use anyhow::{Context, anyhow, bail};
use common::outbox::{self, Relay};
use common::sqlite::{
    self, Connection, Database, OwnedRow, Schema, Value, get_text, integer, take_rows, text,
    transaction,
};

use crate::domain::{PriceCents, Ticket, Title, Unchanged};

/// Database label; must be listed in the component's `sqlite_databases` and, being
/// other than `default`, declared in the runtime config.
pub const DATABASE: &str = "tickets";

/// The `source` of the events this service publishes.
pub const SOURCE: &str = "/tessera/tickets";

/// The tables ([`sqlite::Schema`]: applied once per database).
pub const SCHEMA: Schema = Schema { migrations: &[V1] };

/// The first schema, one statement per entry (hosts run a single statement per call).
const V1: &[&str] = &[
    // `seq` orders listings newest first and is what a page cursor points at.
    "CREATE TABLE IF NOT EXISTS tickets (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        title TEXT NOT NULL,
        price_cents INTEGER NOT NULL,
        user_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        order_id TEXT,
        created_at INTEGER NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS tickets_available ON tickets (seq) WHERE order_id IS NULL",
    // The newest version of each order this service has seen an event for: a duplicate
    // or older order event (pub/sub may reorder `order:created` and `order:cancelled`,
    // which travel on different channels) must not reserve a ticket again.
    "CREATE TABLE IF NOT EXISTS order_versions (
        order_id TEXT PRIMARY KEY,
        version INTEGER NOT NULL
    )",
    // Orders that asked for a ticket while an older order still held it here. Orders
    // lets only one order at a time hold a ticket, so a new order:created for a held
    // ticket means the holder's order:cancelled is still on its way (the two channels
    // are not ordered): the ticket passes to the waiting order when it arrives.
    "CREATE TABLE IF NOT EXISTS waiting_orders (
        order_id TEXT PRIMARY KEY,
        ticket_id TEXT NOT NULL
    )",
    outbox::SCHEMA,
    outbox::META_SCHEMA,
];

const COLUMNS: &str = "seq, id, title, price_cents, user_id, version, order_id";

/// Where a page of available tickets starts: before the ticket it names, newest first.
/// Clients treat it as opaque.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(u64);

impl Cursor {
    /// Reads a cursor that a previous page returned.
    pub fn parse(text: &str) -> Option<Self> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok().map(Self)
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Available tickets, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// At most the requested number of tickets.
    pub tickets: Vec<Ticket>,
    /// Where the next page starts, when there may be one.
    pub next: Option<Cursor>,
}

/// What an order event did to its ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderEffect {
    /// The ticket changed (and `ticket:updated` was enqueued).
    Changed(Ticket),
    /// The ticket's state did not allow the change.
    Unchanged(Unchanged),
    /// No such ticket here.
    UnknownTicket,
    /// An event of this order at this or a newer version was already handled.
    Stale,
}

/// The tickets table and its outbox.
pub struct Tickets<D> {
    db: D,
}

impl Tickets<Connection> {
    /// Opens the `tickets` database, and what the entry point owes its outbox.
    pub fn open() -> anyhow::Result<(Self, Relay)> {
        let db = sqlite::open(DATABASE)?;
        let relay = Relay::open(&db, &SCHEMA).context("Failed to open the tickets database")?;
        Ok((Self { db }, relay))
    }
}

impl<D: Database> Tickets<D> {
    /// The tickets in `db`, creating the tables on first use.
    pub fn new(db: D) -> anyhow::Result<Self> {
        sqlite::migrate(&db, &SCHEMA).context("Failed to create the tickets schema")?;
        Ok(Self { db })
    }

    /// The connection, e.g. for relaying the outbox.
    pub fn db(&self) -> &D {
        &self.db
    }

    /// The ticket with this id.
    pub fn find(&self, id: &str) -> anyhow::Result<Option<Ticket>> {
        let result = self
            .db
            .query(
                &format!("SELECT {COLUMNS} FROM tickets WHERE id = ?"),
                &[text(id)],
            )
            .context("Failed to look up a ticket")?;
        take_rows(result)
            .next()
            .map(|mut row| ticket_from_row(&mut row))
            .transpose()
    }

    /// Up to `limit` tickets that no order holds, newest first, starting after `cursor`.
    pub fn available(&self, limit: usize, cursor: Option<Cursor>) -> anyhow::Result<Page> {
        let before = match cursor {
            Some(Cursor(seq)) => integer(seq)?,
            None => Value::Integer(i64::MAX),
        };
        // One extra row tells whether there is a next page.
        let fetch = i64::try_from(limit).context("limit out of range")? + 1;
        let result = self
            .db
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM tickets WHERE order_id IS NULL AND seq < ? \
                     ORDER BY seq DESC LIMIT ?"
                ),
                &[before, Value::Integer(fetch)],
            )
            .context("Failed to list tickets")?;
        let more = result.rows.len() > limit;
        let mut tickets = Vec::with_capacity(limit);
        let mut next = None;
        for mut row in take_rows(result).take(limit) {
            next = Some(Cursor(row.u64("seq")?));
            tickets.push(ticket_from_row(&mut row)?);
        }
        if !more {
            next = None;
        }
        Ok(Page { tickets, next })
    }

    /// Stores a new ticket and enqueues `ticket:created`, in one transaction.
    pub fn insert(&self, ticket: &Ticket, now: u64) -> anyhow::Result<()> {
        transaction(&self.db, || {
            self.db
                .query(
                    "INSERT INTO tickets \
                     (id, title, price_cents, user_id, version, order_id, created_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                    &[
                        text(&ticket.id),
                        text(ticket.title.as_ref()),
                        integer(ticket.price.cents())?,
                        text(&ticket.user_id),
                        integer(ticket.version)?,
                        ticket.order_id.clone().map_or(Value::Null, Value::Text),
                        integer(now)?,
                    ],
                )
                .context("Failed to insert a ticket")?;
            outbox::enqueue(&self.db, &ticket.created_event(), SOURCE, now)
        })
    }

    /// Applies `change` to the ticket `id` and enqueues `ticket:updated`, in one
    /// transaction; `Ok(None)` when there is no such ticket. An `Err` from `change`
    /// leaves everything as it was.
    pub fn update<E: From<anyhow::Error>>(
        &self,
        id: &str,
        now: u64,
        change: impl FnOnce(&Ticket) -> Result<Ticket, E>,
    ) -> Result<Option<Ticket>, E> {
        transaction(&self.db, || {
            let Some(ticket) = self.find(id)? else {
                return Ok(None);
            };
            let changed = change(&ticket)?;
            self.save(&ticket, &changed, now)?;
            Ok(Some(changed))
        })
    }

    /// Applies an event of order `order_id` at `order_version` to the ticket
    /// `ticket_id`: `change` decides (reserve or release). Events of an order at a
    /// version not newer than one already handled change nothing.
    pub fn apply_order_event(
        &self,
        order_id: &str,
        order_version: u64,
        ticket_id: &str,
        now: u64,
        change: impl FnOnce(&Ticket) -> Result<Ticket, Unchanged>,
    ) -> anyhow::Result<OrderEffect> {
        transaction(&self.db, || {
            if !self.observe_order(order_id, order_version)? {
                return Ok(OrderEffect::Stale);
            }
            let Some(ticket) = self.find(ticket_id)? else {
                return Ok(OrderEffect::UnknownTicket);
            };
            match change(&ticket) {
                Ok(changed) => {
                    self.save(&ticket, &changed, now)?;
                    if changed.is_reserved() {
                        return Ok(OrderEffect::Changed(changed));
                    }
                    // Released: an order waiting for this ticket gets it now.
                    Ok(OrderEffect::Changed(self.hand_over(changed, now)?))
                }
                Err(Unchanged::HeldByAnother(holder)) => {
                    self.wait(order_id, ticket_id)?;
                    Ok(OrderEffect::Unchanged(Unchanged::HeldByAnother(holder)))
                }
                Err(Unchanged::NotHeld) => {
                    // Cancelled while it waited (or long after): it waits no more.
                    self.stop_waiting(order_id)?;
                    Ok(OrderEffect::Unchanged(Unchanged::NotHeld))
                }
                Err(unchanged) => Ok(OrderEffect::Unchanged(unchanged)),
            }
        })
    }

    /// Records that `order_id` waits for `ticket_id` (held by an older order).
    fn wait(&self, order_id: &str, ticket_id: &str) -> anyhow::Result<()> {
        self.db
            .query(
                "INSERT INTO waiting_orders (order_id, ticket_id) VALUES (?, ?) \
                 ON CONFLICT (order_id) DO NOTHING",
                &[text(order_id), text(ticket_id)],
            )
            .context("Failed to record a waiting order")?;
        Ok(())
    }

    fn stop_waiting(&self, order_id: &str) -> anyhow::Result<()> {
        self.db
            .query(
                "DELETE FROM waiting_orders WHERE order_id = ?",
                &[text(order_id)],
            )
            .context("Failed to forget a waiting order")?;
        Ok(())
    }

    /// The just-released `ticket`, reserved for the order that waited longest for it,
    /// if one did; otherwise `ticket` as it is.
    fn hand_over(&self, ticket: Ticket, now: u64) -> anyhow::Result<Ticket> {
        let waiting = self
            .db
            .query(
                "DELETE FROM waiting_orders WHERE order_id = \
                 (SELECT order_id FROM waiting_orders WHERE ticket_id = ? ORDER BY rowid LIMIT 1) \
                 RETURNING order_id",
                &[text(&ticket.id)],
            )
            .context("Failed to read the orders waiting for a ticket")?;
        let Some(next) = waiting
            .rows()
            .next()
            .map(|row| get_text(&row, "order_id"))
            .transpose()?
        else {
            return Ok(ticket);
        };
        match ticket.reserve(&next) {
            Ok(reserved) => {
                self.save(&ticket, &reserved, now)?;
                Ok(reserved)
            }
            // Just released, so free: cannot happen.
            Err(_) => Ok(ticket),
        }
    }

    /// Records that order `order_id` reached `version`; false when that version (or a
    /// newer one) was already recorded.
    fn observe_order(&self, order_id: &str, version: u64) -> anyhow::Result<bool> {
        let result = self
            .db
            .query(
                "INSERT INTO order_versions (order_id, version) VALUES (?, ?) \
                 ON CONFLICT (order_id) DO UPDATE SET version = excluded.version \
                 WHERE excluded.version > order_versions.version \
                 RETURNING order_id",
                &[text(order_id), integer(version)?],
            )
            .context("Failed to record an order's version")?;
        Ok(!result.rows.is_empty())
    }

    /// Writes `changed` over `ticket` and enqueues `ticket:updated`.
    fn save(&self, ticket: &Ticket, changed: &Ticket, now: u64) -> anyhow::Result<()> {
        if changed.id != ticket.id || changed.version != ticket.version + 1 {
            bail!(
                "A change of ticket {} must keep its id and bump its version by one",
                ticket.id
            );
        }
        // The version guard makes the write conditional on what was read. Under BEGIN
        // IMMEDIATE nobody else can write in between, so a miss would be a bug.
        let result = self
            .db
            .query(
                "UPDATE tickets SET title = ?, price_cents = ?, version = ?, order_id = ? \
                 WHERE id = ? AND version = ? RETURNING id",
                &[
                    text(changed.title.as_ref()),
                    integer(changed.price.cents())?,
                    integer(changed.version)?,
                    changed.order_id.clone().map_or(Value::Null, Value::Text),
                    text(&ticket.id),
                    integer(ticket.version)?,
                ],
            )
            .context("Failed to update a ticket")?;
        if result.rows.is_empty() {
            bail!(
                "Ticket {} changed concurrently (expected version {})",
                ticket.id,
                ticket.version
            );
        }
        outbox::enqueue(&self.db, &changed.updated_event(), SOURCE, now)
    }
}

fn ticket_from_row(row: &mut OwnedRow) -> anyhow::Result<Ticket> {
    let id = row.take_text("id")?;
    let title = Title::parse(Some(&row.take_text("title")?))
        .map_err(|_| anyhow!("Stored ticket {id} has an invalid title"))?;
    let price = PriceCents::from_cents(row.u64("price_cents")?)
        .ok_or_else(|| anyhow!("Stored ticket {id} has an invalid price"))?;
    Ok(Ticket {
        title,
        price,
        user_id: row.take_text("user_id")?,
        version: row.u64("version")?,
        order_id: row.take_opt_text("order_id")?,
        id,
    })
}

#[cfg(test)]
mod tests;
