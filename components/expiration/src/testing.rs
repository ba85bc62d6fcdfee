//! Test doubles: [`MemoryRedis`], an in-memory [`Deadlines`] shared by any number of
//! "replicas" (threads), with failure injection; and helpers for messages and what was
//! published.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use anyhow::bail;
use common::events::{self, Event, OrderCreated, OrderStatus, OrderTicket};
use common::outbox::testing::MemoryPublisher;
use common::trace::TraceParent;

use crate::deadlines::{Deadlines, Due, OrderId};

/// 2026-11-24T10:03:00Z, in milliseconds.
pub const NOW_MS: u64 = 1_795_514_580_000;

/// One [`Deadlines`] operation, to make it fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    IsDone,
    Add,
    ArmTimer,
    KeepTrace,
    KeptTrace,
    Due,
    Claim,
    MarkDone,
    UnmarkDone,
}

/// Redis as expiration uses it: the set of deadlines, timers and done markers.
#[derive(Default)]
pub struct MemoryRedis {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    due: BTreeMap<OrderId, u64>,
    timers: BTreeMap<OrderId, u64>,
    /// Kept trace contexts, and until when.
    traces: BTreeMap<OrderId, (TraceParent, u64)>,
    done: BTreeSet<OrderId>,
    failing: BTreeSet<Op>,
    /// Ops that fail only this many more times.
    failing_times: BTreeMap<Op, u32>,
    claims: usize,
    redis_run: Option<String>,
}

impl MemoryRedis {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// Every `op` fails until [`MemoryRedis::recover`].
    pub fn fail(&self, op: Op) {
        self.state().failing.insert(op);
    }

    /// The next `times` calls of `op` fail (Redis away for a while).
    pub fn fail_times(&self, op: Op, times: u32) {
        self.state().failing_times.insert(op, times);
    }

    /// Every operation works again.
    pub fn recover(&self) {
        let mut state = self.state();
        state.failing.clear();
        state.failing_times.clear();
    }

    /// The sorted set, as `(order, deadline)` in score order.
    pub fn entries(&self) -> Vec<(String, u64)> {
        let mut entries: Vec<_> = self
            .state()
            .due
            .iter()
            .map(|(order, &ms)| (order.to_string(), ms))
            .collect();
        entries.sort_by_key(|&(ref order, ms)| (ms, order.clone()));
        entries
    }

    /// When the order's timer key expires, if it has one.
    pub fn timer(&self, order: &str) -> Option<u64> {
        self.state().timers.get(&id(order)).copied()
    }

    /// The trace context kept for the order, and until when, if any.
    pub fn kept_trace_of(&self, order: &str) -> Option<(TraceParent, u64)> {
        self.state().traces.get(&id(order)).cloned()
    }

    /// Whether the order is marked done.
    pub fn is_marked_done(&self, order: &str) -> bool {
        self.state().done.contains(&id(order))
    }

    /// Successful claims so far (by anyone).
    pub fn claims(&self) -> usize {
        self.state().claims
    }

    fn check(state: &mut State, op: Op) -> anyhow::Result<()> {
        let once = match state.failing_times.get_mut(&op) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        };
        if once || state.failing.contains(&op) {
            bail!("connection refused (Redis is down during {op:?})");
        }
        Ok(())
    }
}

impl Deadlines for MemoryRedis {
    fn is_done(&self, order: &OrderId) -> anyhow::Result<bool> {
        let mut state = self.state();
        Self::check(&mut state, Op::IsDone)?;
        Ok(state.done.contains(order))
    }

    fn add(&self, order: &OrderId, deadline_ms: u64) -> anyhow::Result<()> {
        let mut state = self.state();
        Self::check(&mut state, Op::Add)?;
        state.due.insert(order.clone(), deadline_ms);
        Ok(())
    }

    fn arm_timer(&self, order: &OrderId, deadline_ms: u64) -> anyhow::Result<()> {
        let mut state = self.state();
        Self::check(&mut state, Op::ArmTimer)?;
        state.timers.insert(order.clone(), deadline_ms);
        Ok(())
    }

    fn keep_trace(
        &self,
        order: &OrderId,
        traceparent: &TraceParent,
        until_ms: u64,
    ) -> anyhow::Result<()> {
        let mut state = self.state();
        Self::check(&mut state, Op::KeepTrace)?;
        // NX: the first one kept stays.
        state
            .traces
            .entry(order.clone())
            .or_insert_with(|| (traceparent.clone(), until_ms));
        Ok(())
    }

    fn kept_trace(&self, order: &OrderId) -> anyhow::Result<Option<TraceParent>> {
        let mut state = self.state();
        Self::check(&mut state, Op::KeptTrace)?;
        Ok(state
            .traces
            .get(order)
            .map(|(traceparent, _)| traceparent.clone()))
    }

    fn due(&self, now_ms: u64, limit: usize) -> anyhow::Result<Vec<Due>> {
        let mut state = self.state();
        Self::check(&mut state, Op::Due)?;
        let mut due: Vec<Due> = state
            .due
            .iter()
            .filter(|&(_, &ms)| ms <= now_ms)
            .map(|(order, &deadline_ms)| Due {
                order: order.clone(),
                deadline_ms,
            })
            .collect();
        due.sort_by(|a, b| (a.deadline_ms, &a.order).cmp(&(b.deadline_ms, &b.order)));
        due.truncate(limit);
        Ok(due)
    }

    fn claim(&self, order: &OrderId) -> anyhow::Result<bool> {
        let mut state = self.state();
        Self::check(&mut state, Op::Claim)?;
        let removed = state.due.remove(order).is_some();
        state.claims += usize::from(removed);
        Ok(removed)
    }

    fn mark_done(&self, order: &OrderId) -> anyhow::Result<bool> {
        let mut state = self.state();
        Self::check(&mut state, Op::MarkDone)?;
        Ok(state.done.insert(order.clone()))
    }

    fn last_redis_run(&self) -> anyhow::Result<Option<String>> {
        Ok(self.state().redis_run.clone())
    }

    fn remember_redis_run(&self, run_id: &str) -> anyhow::Result<()> {
        self.state().redis_run = Some(run_id.to_owned());
        Ok(())
    }

    fn unmark_done(&self, order: &OrderId) -> anyhow::Result<()> {
        let mut state = self.state();
        Self::check(&mut state, Op::UnmarkDone)?;
        state.done.remove(order);
        Ok(())
    }
}

/// `raw` as an [`OrderId`]; panics on an invalid one.
pub fn id(raw: &str) -> OrderId {
    OrderId::parse(raw).unwrap_or_else(|| panic!("{raw:?} is not an order id"))
}

/// The order ids of the `expiration:complete` events published, in order; checks each
/// envelope's source and channel.
pub fn expired_orders(publisher: &MemoryPublisher) -> Vec<String> {
    for (_, payload) in publisher.published() {
        let envelope: events::Envelope = serde_json::from_slice(&payload).unwrap();
        assert_eq!(envelope.source, "/tessera/expiration");
    }
    publisher
        .events()
        .into_iter()
        .map(|event| match event {
            Event::ExpirationComplete(expired) => expired.order_id,
            other => panic!("published {other:?}"),
        })
        .collect()
}

/// The `traceparent` of each `expiration:complete` published, in order.
pub fn expiry_traces(publisher: &MemoryPublisher) -> Vec<Option<String>> {
    publisher
        .published()
        .iter()
        .map(|(_, payload)| {
            let envelope: events::Envelope = serde_json::from_slice(payload).unwrap();
            envelope.traceparent
        })
        .collect()
}

/// An `order:created` event for `order`, expiring at `expires_at` (RFC 3339).
pub fn order_created(order: &str, expires_at: &str) -> OrderCreated {
    OrderCreated {
        id: order.to_owned(),
        version: 0,
        status: OrderStatus::Created,
        user_id: "buyer".to_owned(),
        expires_at: expires_at.to_owned(),
        ticket: OrderTicket {
            id: "t1".to_owned(),
            price_cents: 1099,
        },
    }
}

/// `event` as a Redis message from orders.
pub fn message(event: impl Into<Event>) -> Vec<u8> {
    traced_message(event, None)
}

/// `event` as a Redis message from orders with `traceparent` in its envelope, as the
/// host hands it over (its consumer span's context).
pub fn traced_message(event: impl Into<Event>, traceparent: Option<&TraceParent>) -> Vec<u8> {
    events::encode(
        &event.into(),
        "/tessera/orders",
        "2d3e4f5a-6b7c-4d8e-9fa0-1b2c3d4e5f03",
        "2026-11-24T10:00:30Z",
        traceparent,
    )
}
