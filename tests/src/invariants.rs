//! The invariant checker: after a run, polls the whole marketplace (every service's
//! API, their sqlite files, localstripe, and the events seen on Redis) until it has
//! settled into a state that keeps every rule, or a deadline passes; then reports each
//! violation with the ids involved, and what the run amounted to.
//!
//! The rules (`rules.rs`): no ticket sold twice; a paid order is complete and holds its
//! ticket, unless it was cancelled and its payment refunded; money is kept exactly for
//! the complete orders; an unpaid order is cancelled after its window and its ticket
//! free, unless someone else holds it; orders' copy of each ticket and payments' copy of
//! each order agree with the owner's; no order expired twice, and every order cancelled
//! without its buyer expired once (its event seen, or, when the checker's subscriber was
//! reconnecting, marked published by expiration in Redis).

mod rules;
pub mod snapshot;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::event_log::EventLog;
use crate::workload::{Record, quantile};
use snapshot::Snapshot;

/// The channels the checker needs watched for the whole run ([`EventLog::start`]).
pub const CHANNELS: &[&str] = &["expiration:complete"];

/// Where the marketplace under check is.
#[derive(Debug, Clone)]
pub struct Target {
    /// The ingress, e.g. `http://127.0.0.1:3000`.
    pub base_url: String,
    /// `tessera up --state-dir`: the sqlite files are `<state_dir>/sqlite/<label>.db`.
    pub state_dir: PathBuf,
    /// Redis (`redis://…`), where expiration keeps its durable marks.
    pub redis_address: String,
    /// localstripe, straight (not through any switch).
    pub stripe_base_url: String,
    pub stripe_secret_key: String,
}

/// Which rule a violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    TicketSoldTwice,
    PaidOrderNotComplete,
    PaidTicketNotHeld,
    CancelledPaymentNotRefunded,
    MoneyWithoutTicket,
    TicketWithoutMoney,
    WrongAmount,
    OrderNotExpired,
    TicketHolderMismatch,
    TicketReplicaDiverged,
    PaymentsReplicaDiverged,
    DuplicateExpiration,
    MissingExpiration,
    /// The state could not be read at all.
    Unreadable,
}

/// One broken rule, with the ids (orders, tickets, charges) involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: Rule,
    pub ids: Vec<String>,
    pub detail: String,
}

/// What the run amounted to, as the services see it at the end.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub journeys_completed: u64,
    pub journeys_failed: u64,
    pub races_lost: u64,
    pub tickets: usize,
    /// Final status → orders.
    pub orders: BTreeMap<String, usize>,
    /// `POST /api/payments` answered 201.
    pub payments_answered: usize,
    /// Payments recorded by the payments service.
    pub payments_recorded: usize,
    /// Refunds Stripe made (payments' record).
    pub refunds: usize,
    /// Charges whose money is kept (localstripe).
    pub charges_kept: usize,
    pub expirations_seen: usize,
    /// Orders whose expiry expiration marked as published (`expiration:done:<id>`) but
    /// whose event the checker's subscriber did not see (published while it reconnected).
    pub expirations_unseen: usize,
}

/// The checker's verdict; `violations` empty means pass.
#[derive(Debug, Clone)]
pub struct Report {
    pub violations: Vec<Violation>,
    pub counts: Counts,
    /// Ticket listed → orders knows it: p50, p99 and how many were measured.
    pub propagation_p50: Option<Duration>,
    pub propagation_p99: Option<Duration>,
    pub propagation_samples: usize,
    /// How long the state took to settle (or the deadline, if it did not).
    pub settled_after: Duration,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The violations of `rule`.
    pub fn of(&self, rule: Rule) -> Vec<&Violation> {
        self.violations.iter().filter(|v| v.rule == rule).collect()
    }
}

/// Polls until the marketplace keeps every rule or `settle` has passed, and reports.
/// `events` must have watched [`CHANNELS`] since before the run started.
pub async fn check(
    target: &Target,
    record: &Record,
    events: &EventLog,
    settle: Duration,
) -> Report {
    let start = Instant::now();
    loop {
        let (violations, snapshot) = match Snapshot::take(target, record, events).await {
            Ok(snapshot) => (rules::evaluate(&snapshot, record), Some(snapshot)),
            Err(err) => {
                let unreadable = Violation {
                    rule: Rule::Unreadable,
                    ids: Vec::new(),
                    detail: err,
                };
                (vec![unreadable], None)
            }
        };
        if violations.is_empty() || start.elapsed() >= settle {
            return report(violations, snapshot.as_ref(), record, start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn report(
    violations: Vec<Violation>,
    snapshot: Option<&Snapshot>,
    record: &Record,
    settled_after: Duration,
) -> Report {
    let mut counts = Counts {
        journeys_completed: record.journeys_completed,
        journeys_failed: record.journeys_failed,
        races_lost: record.races_lost,
        payments_answered: record.payments.len(),
        ..Counts::default()
    };
    if let Some(s) = snapshot {
        counts.tickets = s.tickets.len();
        for order in s.orders.values() {
            *counts.orders.entry(order.status.clone()).or_insert(0) += 1;
        }
        counts.payments_recorded = s.payments.len();
        counts.refunds = s.refunds.iter().filter(|r| r.refund_id.is_some()).count();
        counts.charges_kept = s.money.kept().count();
        counts.expirations_seen = s.expirations.values().sum();
        counts.expirations_unseen = s
            .expirations_done
            .iter()
            .filter(|id| !s.expirations.contains_key(*id))
            .count();
    }
    let propagation = record.propagation();
    Report {
        violations,
        counts,
        propagation_p50: quantile(&propagation, 0.50),
        propagation_p99: quantile(&propagation, 0.99),
        propagation_samples: propagation.len(),
        settled_after,
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        let ms =
            |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{} ms", d.as_millis()));
        writeln!(f, "journeys completed          {}", c.journeys_completed)?;
        writeln!(f, "journeys cut short          {}", c.journeys_failed)?;
        writeln!(f, "order races lost            {}", c.races_lost)?;
        writeln!(f, "tickets listed              {}", c.tickets)?;
        let orders: Vec<String> = c.orders.iter().map(|(s, n)| format!("{s} {n}")).collect();
        writeln!(f, "orders                      {}", orders.join(", "))?;
        writeln!(
            f,
            "payments (201 / recorded)   {} / {}",
            c.payments_answered, c.payments_recorded
        )?;
        writeln!(f, "refunds                     {}", c.refunds)?;
        writeln!(f, "charges kept                {}", c.charges_kept)?;
        writeln!(
            f,
            "expiration:complete seen    {} (+{} marked done, not seen)",
            c.expirations_seen, c.expirations_unseen
        )?;
        writeln!(
            f,
            "propagation p50 / p99       {} / {} ({} tickets)",
            ms(self.propagation_p50),
            ms(self.propagation_p99),
            self.propagation_samples
        )?;
        writeln!(
            f,
            "settled after               {} ms",
            self.settled_after.as_millis()
        )?;
        writeln!(f, "invariants violated         {}", self.violations.len())?;
        for v in &self.violations {
            writeln!(f, "  {:?} {:?}: {}", v.rule, v.ids, v.detail)?;
        }
        Ok(())
    }
}
