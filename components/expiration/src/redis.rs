//! [`Deadlines`] on Redis, through Spin's outbound Redis `execute`.
//!
//! The commands go through [`Execute`], so their exact form and the parsing of the
//! replies are tested natively with a scripted connection; the real one is
//! [`spin_sdk::redis::Connection`]. Spin flattens array replies one level, so
//! `ZRANGEBYSCORE … WITHSCORES` comes back as `member, score, member, score, …`.

use anyhow::{Context, anyhow, bail};
use common::trace::TraceParent;
use spin_sdk::redis::{Connection, RedisParameter, RedisResult};

use crate::deadlines::{DONE_RETENTION_SECONDS, DUE, Deadlines, Due, OrderId, REDIS_RUN};

/// Runs one Redis command.
pub trait Execute {
    /// The (flattened) reply to `command` with `arguments`.
    fn execute(
        &self,
        command: &str,
        arguments: &[RedisParameter],
    ) -> anyhow::Result<Vec<RedisResult>>;
}

impl Execute for Connection {
    fn execute(
        &self,
        command: &str,
        arguments: &[RedisParameter],
    ) -> anyhow::Result<Vec<RedisResult>> {
        Connection::execute(self, command, arguments).map_err(|err| anyhow!("{err:?}"))
    }
}

/// The deadlines in the Redis behind `C`.
pub struct RedisDeadlines<C = Connection> {
    connection: C,
}

impl RedisDeadlines {
    /// Connects to the Redis server at `address` (`redis://host:port`), which must be in
    /// the component's `allowed_outbound_hosts`.
    pub fn open(address: &str) -> anyhow::Result<Self> {
        let connection = Connection::open(address)
            .map_err(|err| anyhow!("{err:?}"))
            .with_context(|| format!("Failed to connect to Redis at `{address}`"))?;
        Ok(Self::new(connection))
    }
}

impl<C: Execute> RedisDeadlines<C> {
    /// Deadlines on `connection`.
    pub fn new(connection: C) -> Self {
        Self { connection }
    }

    fn run(&self, command: &str, arguments: &[RedisParameter]) -> anyhow::Result<Vec<RedisResult>> {
        self.connection
            .execute(command, arguments)
            .with_context(|| format!("Redis {command} failed"))
    }
}

impl<C: Execute> Deadlines for RedisDeadlines<C> {
    fn is_done(&self, order: &OrderId) -> anyhow::Result<bool> {
        let reply = self.run("EXISTS", &[text(order.done_key())])?;
        Ok(integer("EXISTS", reply)? > 0)
    }

    fn add(&self, order: &OrderId, deadline_ms: u64) -> anyhow::Result<()> {
        let reply = self.run("ZADD", &[text(DUE), number(deadline_ms), text(order)])?;
        integer("ZADD", reply).map(drop)
    }

    fn arm_timer(&self, order: &OrderId, deadline_ms: u64) -> anyhow::Result<()> {
        let arguments = [
            text(order.timer_key()),
            text(order),
            text("PXAT"),
            number(deadline_ms),
        ];
        ok("SET", self.run("SET", &arguments)?)
    }

    fn keep_trace(
        &self,
        order: &OrderId,
        traceparent: &TraceParent,
        until_ms: u64,
    ) -> anyhow::Result<()> {
        let arguments = [
            text(order.trace_key()),
            text(traceparent.as_str()),
            text("NX"),
            text("PXAT"),
            number(until_ms),
        ];
        let reply = self.run("SET", &arguments)?;
        // NX answers nil (nothing) when a trace is already kept: the first one stays.
        if matches!(reply.as_slice(), [] | [RedisResult::Nil]) {
            return Ok(());
        }
        ok("SET", reply)
    }

    fn kept_trace(&self, order: &OrderId) -> anyhow::Result<Option<TraceParent>> {
        let reply = self.run("GET", &[text(order.trace_key())])?;
        match reply.as_slice() {
            // Only this code writes the key; anything else in it is no trace context.
            [RedisResult::Binary(bytes)] => {
                Ok(std::str::from_utf8(bytes).ok().and_then(TraceParent::parse))
            }
            [] | [RedisResult::Nil] => Ok(None),
            other => bail!("Redis GET answered {other:?}, expected a string or nil"),
        }
    }

    fn due(&self, now_ms: u64, limit: usize) -> anyhow::Result<Vec<Due>> {
        let arguments = [
            text(DUE),
            text("-inf"),
            number(now_ms),
            text("WITHSCORES"),
            text("LIMIT"),
            number(0),
            number(u64::try_from(limit).unwrap_or(u64::MAX)),
        ];
        parse_due(self.run("ZRANGEBYSCORE", &arguments)?)
    }

    fn claim(&self, order: &OrderId) -> anyhow::Result<bool> {
        let reply = self.run("ZREM", &[text(DUE), text(order)])?;
        Ok(integer("ZREM", reply)? == 1)
    }

    fn mark_done(&self, order: &OrderId) -> anyhow::Result<bool> {
        let arguments = [
            text(order.done_key()),
            text("1"),
            text("NX"),
            text("EX"),
            number(DONE_RETENTION_SECONDS),
        ];
        let reply = self.run("SET", &arguments)?;
        // NX answers nil (nothing) when the key was already there.
        if matches!(reply.as_slice(), [] | [RedisResult::Nil]) {
            return Ok(false);
        }
        ok("SET", reply).map(|()| true)
    }

    fn last_redis_run(&self) -> anyhow::Result<Option<String>> {
        let reply = self.run("GET", &[text(REDIS_RUN)])?;
        Ok(match reply.as_slice() {
            [RedisResult::Binary(bytes)] => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        })
    }

    fn remember_redis_run(&self, run_id: &str) -> anyhow::Result<()> {
        ok("SET", self.run("SET", &[text(REDIS_RUN), text(run_id)])?)
    }

    fn unmark_done(&self, order: &OrderId) -> anyhow::Result<()> {
        let reply = self.run("DEL", &[text(order.done_key())])?;
        integer("DEL", reply).map(drop)
    }
}

fn text(value: impl AsRef<str>) -> RedisParameter {
    RedisParameter::Binary(value.as_ref().as_bytes().to_vec())
}

fn number(value: u64) -> RedisParameter {
    RedisParameter::Int64(i64::try_from(value).unwrap_or(i64::MAX))
}

/// The single integer reply of `command`.
fn integer(command: &str, reply: Vec<RedisResult>) -> anyhow::Result<i64> {
    match reply.as_slice() {
        [RedisResult::Int64(n)] => Ok(*n),
        other => bail!("Redis {command} answered {other:?}, expected an integer"),
    }
}

/// The `OK` reply of `command`.
fn ok(command: &str, reply: Vec<RedisResult>) -> anyhow::Result<()> {
    match reply.as_slice() {
        [RedisResult::Status(status)] if status == "OK" => Ok(()),
        other => bail!("Redis {command} answered {other:?}, expected OK"),
    }
}

/// `member, score, …` pairs. A member that is not an order id (nothing of ours writes
/// one) is logged and skipped.
fn parse_due(reply: Vec<RedisResult>) -> anyhow::Result<Vec<Due>> {
    let (pairs, rest) = reply.as_chunks::<2>();
    if !rest.is_empty() {
        bail!("Redis ZRANGEBYSCORE WITHSCORES answered an odd number of values");
    }
    let mut due = Vec::with_capacity(pairs.len());
    for [member, score] in pairs {
        let RedisResult::Binary(member) = member else {
            bail!("Redis ZRANGEBYSCORE answered the member {member:?}");
        };
        let deadline_ms = score_ms(score)?;
        match std::str::from_utf8(member).ok().and_then(OrderId::parse) {
            Some(order) => due.push(Due { order, deadline_ms }),
            None => eprintln!(
                "expiration: skipping {:?} in {DUE}: not an order id",
                String::from_utf8_lossy(member)
            ),
        }
    }
    Ok(due)
}

/// A sorted-set score (a double, sent as text or, over RESP3, as a number) in whole
/// milliseconds.
fn score_ms(score: &RedisResult) -> anyhow::Result<u64> {
    let value = match score {
        RedisResult::Int64(n) => return Ok(u64::try_from(*n).unwrap_or(0)),
        RedisResult::Binary(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse::<f64>().ok()),
        _ => None,
    };
    match value {
        // Saturating: a negative score is long due, an absurd one never.
        Some(ms) if !ms.is_nan() => Ok(ms as u64),
        _ => bail!("Redis ZRANGEBYSCORE answered the score {score:?}"),
    }
}

#[cfg(test)]
mod tests;
