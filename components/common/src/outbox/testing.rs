//! [`MemoryPublisher`], and a look into the outbox table, for native tests.

use std::cell::{Cell, RefCell};

use anyhow::{Context, anyhow, bail};

use super::Publisher;
use crate::events::{self, Event};
use crate::sqlite::Database;

/// A [`Publisher`] that records what it publishes, and can be taken down.
#[derive(Default)]
pub struct MemoryPublisher {
    published: RefCell<Vec<(String, Vec<u8>)>>,
    down: Cell<bool>,
    fail_after: Cell<Option<usize>>,
    redis_run: RefCell<Option<super::RedisRun>>,
    /// The run the last `redis_run` answered: publishes go only to it, as Redis's do.
    checked_run: RefCell<Option<String>>,
    /// A restart that happens just before the next publish.
    restart_before_publish: RefCell<Option<super::RedisRun>>,
    /// A restart that happens after Redis accepted the next publish, before it sent it.
    restart_after_publish: RefCell<Option<super::RedisRun>>,
    /// What Redis accepted and then lost in such a restart.
    lost: RefCell<Vec<(String, Vec<u8>)>>,
}

impl MemoryPublisher {
    /// Every `(channel, payload)` published so far, in order.
    pub fn published(&self) -> Vec<(String, Vec<u8>)> {
        self.published.borrow().clone()
    }

    /// The published events, decoded; checks that each went out on its own channel.
    pub fn events(&self) -> Vec<Event> {
        self.published
            .borrow()
            .iter()
            .map(|(channel, payload)| {
                let event = events::decode(payload).expect("published payloads decode");
                assert_eq!(channel, event.channel(), "published on the wrong channel");
                event
            })
            .collect()
    }

    /// Forgets what was published.
    pub fn clear(&self) {
        self.published.borrow_mut().clear();
    }

    /// Every publish fails until [`MemoryPublisher::come_back`].
    pub fn go_down(&self) {
        self.down.set(true);
    }

    /// Publishing works again.
    pub fn come_back(&self) {
        self.down.set(false);
        self.fail_after.set(None);
    }

    /// From now on Redis reports this run (`id`, up for `uptime_seconds`).
    pub fn set_redis_run(&self, id: &str, uptime_seconds: u64) {
        self.redis_run.replace(Some(super::RedisRun {
            id: id.to_owned(),
            uptime_seconds,
        }));
    }

    /// Redis restarts (as run `id`) between the caller's check and its next publish.
    pub fn restart_before_next_publish(&self, id: &str) {
        self.restart_before_publish.replace(Some(super::RedisRun {
            id: id.to_owned(),
            uptime_seconds: 0,
        }));
    }

    /// Redis accepts the next publish, then dies (and comes back as run `id`) before it
    /// has sent it to any subscriber: the publish succeeds and the event is lost.
    pub fn restart_after_next_publish(&self, id: &str) {
        self.restart_after_publish.replace(Some(super::RedisRun {
            id: id.to_owned(),
            uptime_seconds: 0,
        }));
    }

    /// What Redis accepted but lost in a restart ([`MemoryPublisher::restart_after_next_publish`]).
    pub fn lost(&self) -> Vec<(String, Vec<u8>)> {
        self.lost.borrow().clone()
    }

    /// The next `successes` publishes work, then it goes down.
    pub fn fail_after(&self, successes: usize) {
        self.fail_after.set(Some(successes));
    }
}

impl Publisher for MemoryPublisher {
    fn publish(&self, channel: &str, payload: &[u8]) -> anyhow::Result<()> {
        match self.fail_after.get() {
            Some(0) => self.down.set(true),
            Some(n) => self.fail_after.set(Some(n - 1)),
            None => {}
        }
        if self.down.get() {
            bail!("connection refused (Redis is down)");
        }
        if let Some(restarted) = self.restart_before_publish.take() {
            self.redis_run.replace(Some(restarted));
        }
        let current = self.redis_run.borrow().as_ref().map(|run| run.id.clone());
        let checked = self.checked_run.borrow().clone();
        if checked.is_some() && checked != current {
            return Err(super::restarted_since_checked());
        }
        let message = (channel.to_owned(), payload.to_vec());
        if let Some(restarted) = self.restart_after_publish.take() {
            self.redis_run.replace(Some(restarted));
            self.lost.borrow_mut().push(message);
            return Ok(());
        }
        self.published.borrow_mut().push(message);
        Ok(())
    }

    fn redis_run(&self) -> anyhow::Result<Option<super::RedisRun>> {
        let run = self.redis_run.borrow().clone();
        self.checked_run
            .replace(run.as_ref().map(|run| run.id.clone()));
        Ok(run)
    }
}

/// The `traceparent` of each event waiting in the outbox, in `seq` order.
pub fn pending_traceparents(db: &(impl Database + ?Sized)) -> anyhow::Result<Vec<Option<String>>> {
    pending_rows(db)?
        .into_iter()
        .map(|(_, payload)| {
            let envelope: events::Envelope = serde_json::from_slice(&payload)?;
            Ok(envelope.traceparent)
        })
        .collect()
}

/// The events waiting in the outbox, in `seq` order.
pub fn pending(db: &(impl Database + ?Sized)) -> anyhow::Result<Vec<Event>> {
    pending_rows(db)?
        .into_iter()
        .map(|(channel, payload)| {
            let event = events::decode(&payload)?;
            if channel != event.channel() {
                bail!("`{}` event queued for channel `{channel}`", event.channel());
            }
            Ok(event)
        })
        .collect()
}

/// The outbox's rows, `(channel, payload)`, in `seq` order.
fn pending_rows(db: &(impl Database + ?Sized)) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let result = db
        .query("SELECT channel, payload FROM outbox ORDER BY seq", &[])
        .context("Failed to read the outbox")?;
    result
        .rows()
        .map(|row| {
            let payload = row
                .get::<&[u8]>("payload")
                .ok_or_else(|| anyhow!("payload is not a blob"))?;
            let channel = row.get::<&str>("channel").unwrap_or_default();
            Ok((channel.to_owned(), payload.to_vec()))
        })
        .collect()
}
