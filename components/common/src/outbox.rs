//! The transactional outbox: an event is committed with the change that caused it, and
//! published after the commit.
//!
//! A service writes the change and [`enqueue`]s its event in one sqlite transaction
//! ([`crate::sqlite::transaction`], `BEGIN IMMEDIATE` … `COMMIT` on one connection), so
//! either both are stored or neither is. After the commit it calls [`relay`], which
//! publishes pending rows in `seq` order, stopping at the first failure, and deletes them
//! once Redis accepted them and, still the same run, answered one more command: only
//! then is it known to have sent them to its subscribers
//! ([`Publisher::confirm_sent`]). A crash or a Redis outage or restart between commit and
//! that answer leaves the rows in the table, and they go out on the next relay.
//!
//! Relaying is owed only where there is something to relay: an entry point opens its
//! database with [`Relay::open`], which learns in the same query that checks the schema
//! version whether events are waiting, and [`Relay::finish`] relays after the work only
//! if they were, or if the work queued some (an HTTP entry point calls it after its
//! response has been sent, [`crate::http::after_response`]). A read of a quiet service
//! costs the outbox nothing. A backlog (a crash, a Redis outage) therefore drains with the service's next
//! request or message of any kind.
//!
//! Concurrent relays do not publish the same rows: a row is claimed for a lease
//! (`claimed_until`) by the relay that publishes it. Without the claim, every instance
//! relaying at the start of its request would publish every young row (measured: 60
//! concurrent creates gave 210 publishes). The writer of an event claims it as it
//! enqueues it, in the same transaction, so its own relay publishes it without looking
//! for it: the usual relay reads nothing and writes only the `DELETE` after the publish
//! (the claim had been an `UPDATE` of its own, a write on every event's path to Redis).
//! Other rows (a backlog) are claimed a batch at a time by one atomic `UPDATE`. Rows
//! whose publish (or its confirmation) failed are released at once for the next relay,
//! the whole batch; rows of a writer or relay that died mid-way are taken again when
//! the lease expires.
//!
//! Delivery is still at least once: a relay that published a row but failed to delete
//! it, or outlived its lease, leads to a second publish. That is acceptable because every
//! consumer is idempotent (events carry the entity's version; replicas apply only newer
//! versions, and effects are conditional updates). Concurrent relays can also interleave
//! rows; the versions make consumers ignore the older of two events for one entity.

use std::cell::RefCell;

use anyhow::{Context, anyhow, bail};

use crate::config;
use crate::events::{self, Event};
use crate::sqlite::{self, Database, Schema, Value, get_text, get_u64, integer, text};
use crate::time::{now, rfc3339};
use crate::trace;

/// The outbox table; every service that publishes creates it in its own database.
/// `claimed_until` is the Unix time a relay's claim on the row expires (0: unclaimed).
pub const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    claimed_until INTEGER NOT NULL DEFAULT 0
)";

/// What the relay remembers about Redis: the `run_id` of the server it last published to.
pub const META_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS outbox_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
)";

/// How long a restarted Redis must have been up before the relay publishes to it again.
///
/// Pub/sub keeps nothing: an event published while a subscriber has not resubscribed yet
/// is lost to it, and after a Redis restart every subscriber must reconnect (the Tessera
/// host's Redis trigger retries at least every second). So when the relay finds that
/// Redis is a new run since it last published (its `run_id` changed) and younger than
/// this (whole seconds as Redis counts them, so 2 to 3 s), it leaves the events in the
/// outbox for a later relay. Found by the chaos run
/// (RELIABILITY.md): events relayed right after a Redis restart were lost to every service
/// not yet back (tickets unknown to orders, charges never refunded).
pub const REDIS_SETTLE_SECONDS: u64 = 3;

/// Redis address used when the variable `redis_address` is unset.
pub const DEFAULT_REDIS_ADDRESS: &str = "redis://127.0.0.1:6379";

/// Rows claimed at once while relaying.
const BATCH: usize = 100;

/// How long a claim on rows lasts (2 to 3 s: whole seconds). A writer or relay killed
/// after claiming (a replica's `kill -9`) leaves its rows to the next relay only after
/// this, and since HTTP handlers relay after their response, the client already holds
/// its 201: at 10 s a buyer whose orders replica was killed just after answering paid
/// for an order payments had not heard of for longer than it waits (5 s), and got a 404
/// (the chaos run; at 60 s it was 404s again and again). A live relay slower than this
/// (Redis paused or hung) may see another relay publish the same rows too: a duplicate,
/// which the contract allows and every consumer ignores, and which a buyer never sees.
pub const CLAIM_SECONDS: u64 = 3;

thread_local! {
    /// The events this thread [`enqueue`]d in the transaction it has open: claimed for
    /// its relay, but its own only once the transaction commits.
    static UNCOMMITTED: RefCell<Vec<Pending>> = const { RefCell::new(Vec::new()) };
    /// The events this thread's committed transactions enqueued and its relay has not
    /// taken yet. In a component the thread is one instance, serving one request or
    /// message, so these are what that work queued; its relay publishes them without
    /// asking the database for them.
    static OWN: RefCell<Vec<Pending>> = const { RefCell::new(Vec::new()) };
}

fn own_count() -> usize {
    OWN.with_borrow(Vec::len)
}

/// Called by [`crate::sqlite::transaction`] when the transaction has ended: the events
/// it enqueued become this thread's to relay if it committed, and are forgotten (they
/// were rolled back with it) if not.
pub(crate) fn transaction_ended(committed: bool) {
    let enqueued = UNCOMMITTED.take();
    if committed {
        OWN.with_borrow_mut(|own| own.extend(enqueued));
    }
}

/// What one entry point (a request or a message) owes the outbox: a relay after its
/// work when events were waiting as it opened the database, or when the work queued
/// some. Decided by [`Relay::open`], paid by [`Relay::finish`].
#[must_use = "a relay that is never finished leaves queued events for the next entry point"]
#[derive(Debug)]
pub struct Relay {
    backlog: bool,
    own_at_open: usize,
}

impl Relay {
    /// Brings `db` to `schema` (which must create [`SCHEMA`] and [`META_SCHEMA`]) and
    /// learns whether its outbox holds events to relay, both in one query when the
    /// schema is current.
    pub fn open(db: &(impl Database + ?Sized), schema: &Schema) -> anyhow::Result<Self> {
        let own_at_open = own_count();
        let now = now();
        // Fails on a database without the outbox yet: migrating creates it.
        let backlog = match version_and_backlog(db, now) {
            Ok((version, backlog)) if version >= schema.version() => backlog,
            _ => {
                sqlite::upgrade(db, schema)?;
                version_and_backlog(db, now)?.1
            }
        };
        Ok(Self {
            backlog,
            own_at_open,
        })
    }

    /// Whether [`Relay::finish`] will relay.
    pub fn is_due(&self) -> bool {
        self.backlog || own_count() != self.own_at_open
    }

    /// Relays to `publisher` if due, logging a failure ([`log_if_stopped`]): the work's
    /// change is committed and its events wait for the next relay.
    pub fn finish_with(&self, db: &(impl Database + ?Sized), publisher: &impl Publisher) {
        if !self.is_due() {
            return;
        }
        // The backlog as found at open: rows the work itself queued are its own and
        // need no search, and one left since is another entry point's to find.
        log_if_stopped(relay_owed(db, publisher, now(), self.backlog));
    }

    /// [`Relay::finish_with`] to the Redis of the variable `redis_address`, read only
    /// when a relay is due.
    pub fn finish(&self, db: &(impl Database + ?Sized)) {
        if !self.is_due() {
            return;
        }
        match RedisPublisher::from_variables() {
            Ok(publisher) => self.finish_with(db, &publisher),
            Err(err) => eprintln!("outbox relay skipped, pending events stay queued: {err:#}"),
        }
    }
}

/// The schema version and whether unclaimed outbox rows exist, in one statement.
fn version_and_backlog(db: &(impl Database + ?Sized), now: u64) -> anyhow::Result<(u64, bool)> {
    let result = db.query(
        "SELECT user_version AS version, \
         EXISTS (SELECT 1 FROM outbox WHERE claimed_until <= ?) AS backlog \
         FROM pragma_user_version",
        &[integer(now)?],
    )?;
    let row = result
        .rows()
        .next()
        .ok_or_else(|| anyhow!("the schema check returned no row"))?;
    Ok((get_u64(&row, "version")?, get_u64(&row, "backlog")? != 0))
}

/// Stores `event` for publishing, inside the caller's open transaction
/// ([`crate::sqlite::transaction`]), claimed for this instance's relay.
///
/// `source` is the publishing service (`/tessera/<service>`) and `now` the Unix time of
/// the change; the envelope gets a fresh UUID v4 as its id, and the current trace
/// context ([`trace::current`]: the request's or message's) as its `traceparent`.
pub fn enqueue(
    db: &(impl Database + ?Sized),
    event: &Event,
    source: &str,
    now: u64,
) -> anyhow::Result<()> {
    let id = uuid::Uuid::new_v4().to_string();
    let traceparent = trace::current();
    let payload = events::encode(event, source, &id, &rfc3339(now), traceparent.as_ref());
    let inserted = db
        .query(
            "INSERT INTO outbox (channel, payload, created_at, claimed_until) \
             VALUES (?, ?, ?, ?) RETURNING seq",
            &[
                text(event.channel()),
                Value::Blob(payload.clone()),
                integer(now)?,
                integer(now.saturating_add(CLAIM_SECONDS))?,
            ],
        )
        .with_context(|| format!("Failed to enqueue a `{}` event", event.channel()))?;
    let seq = inserted
        .rows()
        .next()
        .ok_or_else(|| anyhow!("enqueuing a `{}` event returned no seq", event.channel()))
        .and_then(|row| get_u64(&row, "seq"))?;
    UNCOMMITTED.with_borrow_mut(|rows| {
        rows.push(Pending {
            seq,
            channel: event.channel().to_owned(),
            payload,
        })
    });
    Ok(())
}

/// Publishes the pending rows in `seq` order, deleting each one after it was published:
/// the backlog (rows no live relay has claimed), then this instance's own.
///
/// Returns how many rows were published. On the first failure it stops and returns the
/// error; that row and the ones after it stay for the next relay. Callers have already
/// committed their change, so a relay error is logged, never turned into a failed
/// request (see [`relay_or_log`]).
pub fn relay(db: &(impl Database + ?Sized), publisher: &impl Publisher) -> anyhow::Result<usize> {
    relay_at(db, publisher, now())
}

fn relay_at(
    db: &(impl Database + ?Sized),
    publisher: &impl Publisher,
    now: u64,
) -> anyhow::Result<usize> {
    let backlog = has_pending(db, now)?;
    relay_owed(db, publisher, now, backlog)
}

/// Relays the backlog if there is one, then this instance's own rows.
fn relay_owed(
    db: &(impl Database + ?Sized),
    publisher: &impl Publisher,
    now: u64,
    backlog: bool,
) -> anyhow::Result<usize> {
    // Taken whatever happens next: a failure releases them to the next relay.
    let mut own = OWN.take();
    if !backlog && own.is_empty() {
        return Ok(0);
    }
    let mut run = last_redis_run(db)?;
    let mut published = 0;
    if backlog {
        match relay_backlog(db, publisher, now, &mut run) {
            Ok(relayed) => {
                // An own row whose claim ran out (work slower than the lease) was
                // claimed as backlog too: it went out once, with the backlog.
                own.retain(|row| !relayed.contains(&row.seq));
                published += relayed.len();
            }
            Err(err) => {
                // Older events go first: the own ones wait with them.
                release(db, &own);
                return Err(err);
            }
        }
    }
    if !own.is_empty() {
        publish_claimed(db, publisher, &own, &mut run)?;
        published += own.len();
    }
    Ok(published)
}

/// Claims and publishes unclaimed (or expired) rows a batch at a time until none is
/// left; the `seq`s it published.
fn relay_backlog(
    db: &(impl Database + ?Sized),
    publisher: &impl Publisher,
    now: u64,
    run: &mut Option<String>,
) -> anyhow::Result<Vec<u64>> {
    let mut published = Vec::new();
    loop {
        let claimed = claim(db, now)?;
        if claimed.is_empty() {
            // A concurrent relay claimed what was pending since we looked: nothing to
            // publish or delete.
            return Ok(published);
        }
        publish_claimed(db, publisher, &claimed, run)?;
        published.extend(claimed.iter().map(|row| row.seq));
        // Every claimed row is gone, so each round makes progress.
        if claimed.len() < BATCH {
            return Ok(published);
        }
    }
}

/// Publishes rows this relay holds the claim on, then deletes them; on a failure to
/// publish it releases them all for the next relay.
fn publish_claimed(
    db: &(impl Database + ?Sized),
    publisher: &impl Publisher,
    claimed: &[Pending],
    run: &mut Option<String>,
) -> anyhow::Result<()> {
    if let Err(err) = publish_batch(db, publisher, claimed, run) {
        // All of them, those Redis accepted included: a failure means Redis went away
        // or restarted, and an event it accepted just before may never have reached a
        // subscriber (see `Publisher::confirm_sent`). Publishing one twice is harmless;
        // consumers are idempotent.
        release(db, claimed);
        return Err(err);
    }
    // If this fails the rows stay claimed, and are published again once the claim
    // expires.
    let (placeholders, seqs) = seq_list(claimed)?;
    db.query(
        &format!("DELETE FROM outbox WHERE seq IN ({placeholders})"),
        &seqs,
    )
    .context("Failed to delete published outbox rows")?;
    Ok(())
}

/// Publishes `claimed` in order to Redis run `run` (see [`publish_to_known_run`]), then
/// confirms that Redis sent them on to its subscribers.
fn publish_batch(
    db: &(impl Database + ?Sized),
    publisher: &impl Publisher,
    claimed: &[Pending],
    run: &mut Option<String>,
) -> anyhow::Result<()> {
    let (Some(first), Some(last)) = (claimed.first(), claimed.last()) else {
        return Ok(());
    };
    for row in claimed {
        publish_to_known_run(db, publisher, row, run).with_context(|| {
            format!(
                "Failed to publish outbox row {} on `{}`",
                row.seq, row.channel
            )
        })?;
    }
    publisher.confirm_sent(run.as_deref()).with_context(|| {
        format!(
            "Redis accepted outbox rows {} to {} but may not have sent them to its subscribers",
            first.seq, last.seq
        )
    })
}

/// A claimed outbox row.
#[derive(Debug)]
struct Pending {
    seq: u64,
    channel: String,
    payload: Vec<u8>,
}

/// Whether any row waits to be relayed. The usual case is an empty outbox: found out
/// with a read, which (unlike any UPDATE) does not take the database's write lock.
fn has_pending(db: &(impl Database + ?Sized), now: u64) -> anyhow::Result<bool> {
    let any = db
        .query(
            "SELECT seq FROM outbox WHERE claimed_until <= ? LIMIT 1",
            &[integer(now)?],
        )
        .context("Failed to read the outbox")?;
    Ok(!any.rows.is_empty())
}

/// The Redis run this outbox last published to, if any.
fn last_redis_run(db: &(impl Database + ?Sized)) -> anyhow::Result<Option<String>> {
    let known = db
        .query(
            "SELECT value FROM outbox_meta WHERE key = 'redis_run_id'",
            &[],
        )
        .context("Failed to read the outbox's Redis run")?;
    Ok(known
        .rows()
        .next()
        .and_then(|row| get_text(&row, "value").ok()))
}

/// Publishes `row` to Redis run `run`, the one this outbox last published to: one round
/// trip in the usual case. When Redis is another run by now it publishes nothing and says
/// which; that run is then remembered and published to, unless it is younger than
/// [`REDIS_SETTLE_SECONDS`]: then this fails, so the rows wait.
fn publish_to_known_run(
    db: &(impl Database + ?Sized),
    publisher: &impl Publisher,
    row: &Pending,
    run: &mut Option<String>,
) -> anyhow::Result<()> {
    let current = match publisher.publish_to_run(&row.channel, &row.payload, run.as_deref())? {
        Delivery::Published => return Ok(()),
        Delivery::OtherRun(current) => current,
    };
    if current.since(run.as_deref()) == RunChange::RestartedMomentsAgo {
        return Err(anyhow!(current.hold_message()));
    }
    db.query(
        "INSERT INTO outbox_meta (key, value) VALUES ('redis_run_id', ?) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[text(&current.id)],
    )
    .context("Failed to remember the Redis run")?;
    *run = Some(current.id);
    match publisher.publish_to_run(&row.channel, &row.payload, run.as_deref())? {
        Delivery::Published => Ok(()),
        // Restarted again between the two round trips.
        Delivery::OtherRun(_) => Err(restarted_since_checked()),
    }
}

/// Claims up to [`BATCH`] unclaimed (or expired) rows, oldest first.
fn claim(db: &(impl Database + ?Sized), now: u64) -> anyhow::Result<Vec<Pending>> {
    // One statement, so two relays never claim the same row.
    let result = db
        .query(
            "UPDATE outbox SET claimed_until = ? WHERE seq IN \
             (SELECT seq FROM outbox WHERE claimed_until <= ? ORDER BY seq LIMIT ?) \
             RETURNING seq, channel, payload",
            &[
                integer(now.saturating_add(CLAIM_SECONDS))?,
                integer(now)?,
                integer(BATCH as u64)?,
            ],
        )
        .context("Failed to claim outbox rows")?;
    let mut claimed = result
        .rows()
        .map(|row| {
            let seq = get_u64(&row, "seq")?;
            let payload = row
                .get::<&[u8]>("payload")
                .ok_or_else(|| anyhow!("Column `payload` of outbox row {seq} is not a blob"))?;
            Ok(Pending {
                seq,
                channel: get_text(&row, "channel")?,
                payload: payload.to_vec(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // RETURNING does not promise an order.
    claimed.sort_by_key(|row| row.seq);
    Ok(claimed)
}

/// Gives claimed rows back for the next relay (best effort: a claim that is not
/// released expires).
fn release(db: &(impl Database + ?Sized), rows: &[Pending]) {
    if rows.is_empty() {
        return;
    }
    let result = seq_list(rows).and_then(|(placeholders, seqs)| {
        db.query(
            &format!("UPDATE outbox SET claimed_until = 0 WHERE seq IN ({placeholders})"),
            &seqs,
        )
    });
    if let Err(err) = result {
        eprintln!(
            "failed to release claimed outbox rows, they wait for the claim to expire: {err:#}"
        );
    }
}

/// `rows`' sequence numbers as SQL parameters, and the `?, ?, …` that takes them.
fn seq_list(rows: &[Pending]) -> anyhow::Result<(String, Vec<Value>)> {
    let seqs = rows
        .iter()
        .map(|row| integer(row.seq))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((vec!["?"; rows.len()].join(", "), seqs))
}

/// [`relay`], logging a failure instead of returning it.
pub fn relay_or_log(db: &(impl Database + ?Sized), publisher: &impl Publisher) {
    log_if_stopped(relay(db, publisher));
}

/// Logs a relay's failure: the caller's change is committed, and the events it could not
/// publish wait in the outbox for the next relay, so it is never the caller's error.
fn log_if_stopped(relayed: anyhow::Result<usize>) {
    if let Err(err) = relayed {
        eprintln!("outbox relay stopped, pending events stay queued: {err:#}");
    }
}

/// Where relayed events go.
pub trait Publisher {
    /// Publishes `payload` on `channel`; an error means it was not published.
    fn publish(&self, channel: &str, payload: &[u8]) -> anyhow::Result<()>;

    /// Which run of the Redis server this is, and how long it has been up (`None`: not
    /// known, and then events are never held back).
    fn redis_run(&self) -> anyhow::Result<Option<RedisRun>> {
        Ok(None)
    }

    /// Publishes `payload` on `channel` only if Redis is run `run` (`None`: no run known
    /// yet); otherwise publishes nothing and answers the run it is. A publisher that
    /// cannot tell runs apart always publishes. The check and the publish are one step
    /// where the publisher can make them one ([`RedisPublisher`]: one script).
    fn publish_to_run(
        &self,
        channel: &str,
        payload: &[u8],
        run: Option<&str>,
    ) -> anyhow::Result<Delivery> {
        if let Some(current) = self.redis_run()?
            && Some(current.id.as_str()) != run
        {
            return Ok(Delivery::OtherRun(current));
        }
        self.publish(channel, payload)?;
        Ok(Delivery::Published)
    }

    /// Succeeds once Redis, still run `run` (`None`: no run known), has sent everything
    /// published to it before this call on to its subscribers; an error means it may not
    /// have.
    ///
    /// Redis answers a `PUBLISH` before it writes the message to the subscribers'
    /// sockets (its reply to the publisher is the first write of the event loop's flush,
    /// the subscribers' copies follow), so a Redis killed in between has accepted an
    /// event that no subscriber got: the chaos run lost a `ticket:updated` and an
    /// `order:cancelled` that way (RELIABILITY.md, fix 13). The answer to a later
    /// command, from the same run, proves that flush finished. A publisher that cannot
    /// tell runs apart confirms at once.
    fn confirm_sent(&self, run: Option<&str>) -> anyhow::Result<()> {
        match self.redis_run()? {
            Some(current) if Some(current.id.as_str()) != run => {
                Err(restarted_since_published(&current))
            }
            _ => Ok(()),
        }
    }
}

/// What [`Publisher::publish_to_run`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Published to the run asked for.
    Published,
    /// Nothing: Redis is this other run.
    OtherRun(RedisRun),
}

impl<P: Publisher + ?Sized> Publisher for &P {
    fn publish(&self, channel: &str, payload: &[u8]) -> anyhow::Result<()> {
        (**self).publish(channel, payload)
    }

    fn redis_run(&self) -> anyhow::Result<Option<RedisRun>> {
        (**self).redis_run()
    }

    fn publish_to_run(
        &self,
        channel: &str,
        payload: &[u8],
        run: Option<&str>,
    ) -> anyhow::Result<Delivery> {
        (**self).publish_to_run(channel, payload, run)
    }

    fn confirm_sent(&self, run: Option<&str>) -> anyhow::Result<()> {
        (**self).confirm_sent(run)
    }
}

/// The error of a publish refused because Redis restarted after the caller checked it.
pub fn restarted_since_checked() -> anyhow::Error {
    anyhow!("Redis restarted since it was checked; nothing was published, the event waits")
}

/// The error of a confirmation that found Redis restarted since the publishes.
fn restarted_since_published(current: &RedisRun) -> anyhow::Error {
    anyhow!(
        "Redis restarted {} s ago, after accepting them (now run {}); they wait to be \
         published again",
        current.uptime_seconds,
        current.id
    )
}

/// One run of a Redis server: its `run_id` changes at every start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisRun {
    /// `run_id`: random, new at every start of the server.
    pub id: String,
    /// `uptime_in_seconds`.
    pub uptime_seconds: u64,
}

/// How a Redis run compares with the one a publisher last published to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunChange {
    /// The same run: publish.
    Same,
    /// A new run (or none known): publish, and remember it.
    New,
    /// A new run up for less than [`REDIS_SETTLE_SECONDS`]: its subscribers may not be
    /// back yet, so hold events.
    RestartedMomentsAgo,
}

impl RedisRun {
    /// Compares this run with the `last` one published to. With none known this is a
    /// first publish, which has no subscribers to wait for: they subscribed before the
    /// app served anything.
    pub fn since(&self, last: Option<&str>) -> RunChange {
        match last {
            Some(last) if last == self.id => RunChange::Same,
            Some(_) if self.uptime_seconds < REDIS_SETTLE_SECONDS => RunChange::RestartedMomentsAgo,
            _ => RunChange::New,
        }
    }

    /// Why events are held, for the log.
    pub fn hold_message(&self) -> String {
        format!(
            "Redis restarted {} s ago; events wait until it has been up {REDIS_SETTLE_SECONDS} s, \
             so that every subscriber is back",
            self.uptime_seconds
        )
    }

    /// From the reply to `INFO server`.
    pub fn from_info(info: &str) -> Option<RedisRun> {
        let field = |name: &str| {
            info.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        Some(RedisRun {
            id: field("run_id")?.to_owned(),
            uptime_seconds: field("uptime_in_seconds")?.parse().ok()?,
        })
    }
}

/// [`Publisher`] on Spin's outbound Redis. The address must be in the component's
/// `allowed_outbound_hosts`.
///
/// The connection is opened on the first publish, so a relay that finds nothing to
/// publish costs no Redis round trip.
///
/// Once [`Publisher::redis_run`] has been asked, every publish goes out only to that same
/// run of the server ([`PUBLISH_TO_RUN`]). Checking the run and then publishing were two
/// commands, and a Redis restart could fall between them: the publish then reached the
/// new server before the subscribers were back (a dropped connection is retried on the
/// reconnected one), skipping the hold. Found by the chaos run with Redis faults only
/// (RELIABILITY.md, fix 11).
pub struct RedisPublisher {
    address: String,
    connection: RefCell<Option<spin_sdk::redis::Connection>>,
    checked_run: RefCell<Option<String>>,
}

/// Publishes payload `ARGV[2]` on channel `ARGV[1]` only if the server's `run_id` is
/// `ARGV[3]`, answering the number of receivers; for any other run it publishes nothing and
/// answers the server's `INFO server` (its run and uptime). One script, so the check and
/// the publish cannot be split by a restart, and one round trip.
pub const PUBLISH_TO_RUN: &str = "local info = redis.call('INFO', 'server') \
     if string.match(info, 'run_id:(%x+)') ~= ARGV[3] then return info end \
     return redis.call('PUBLISH', ARGV[1], ARGV[2])";

/// Answers 1 if the server's `run_id` is `ARGV[1]`, or else its `INFO server`: the
/// confirmation of [`Publisher::confirm_sent`], run after the publishes' replies came.
pub const STILL_RUN: &str = "local info = redis.call('INFO', 'server') \
     if string.match(info, 'run_id:(%x+)') ~= ARGV[1] then return info end \
     return 1";

impl RedisPublisher {
    /// A publisher to the Redis server at `address` (`redis://host:port`).
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            connection: RefCell::new(None),
            checked_run: RefCell::new(None),
        }
    }

    /// A publisher to the variable `redis_address` (default [`DEFAULT_REDIS_ADDRESS`]).
    pub fn from_variables() -> anyhow::Result<Self> {
        let address = config::variable_or("redis_address", DEFAULT_REDIS_ADDRESS.to_owned())?;
        Ok(Self::new(address))
    }
}

impl RedisPublisher {
    /// The open connection, or a new one. Callers put it back after a success, so a
    /// failed command makes the next one reconnect.
    fn take_connection(&self) -> anyhow::Result<spin_sdk::redis::Connection> {
        if let Some(connection) = self.connection.take() {
            return Ok(connection);
        }
        spin_sdk::redis::Connection::open(&self.address)
            .map_err(|err| anyhow!("{err:?}"))
            .with_context(|| format!("Failed to connect to Redis at `{}`", self.address))
    }
}

impl Publisher for RedisPublisher {
    fn redis_run(&self) -> anyhow::Result<Option<RedisRun>> {
        use spin_sdk::redis::{RedisParameter, RedisResult};
        let connection = self.take_connection()?;
        let reply = connection
            .execute("INFO", &[RedisParameter::Binary(b"server".to_vec())])
            .map_err(|err| anyhow!("{err:?}"))
            .with_context(|| format!("Redis at `{}`: INFO server", self.address))?;
        self.connection.replace(Some(connection));
        let run = match reply.as_slice() {
            [RedisResult::Binary(bytes)] => RedisRun::from_info(&String::from_utf8_lossy(bytes)),
            [RedisResult::Status(text)] => RedisRun::from_info(text),
            _ => None,
        };
        self.checked_run
            .replace(run.as_ref().map(|run| run.id.clone()));
        Ok(run)
    }

    fn publish(&self, channel: &str, payload: &[u8]) -> anyhow::Result<()> {
        let checked_run = self.checked_run.borrow().clone();
        let Some(run) = checked_run else {
            let connection = self.take_connection()?;
            connection
                .publish(channel, payload)
                .map_err(|err| anyhow!("{err:?}"))
                .with_context(|| format!("Redis at `{}`", self.address))?;
            // Kept only after a success: after a failure the next publish reconnects.
            self.connection.replace(Some(connection));
            return Ok(());
        };
        match self.publish_to_run(channel, payload, Some(&run))? {
            Delivery::Published => Ok(()),
            Delivery::OtherRun(_) => Err(restarted_since_checked()),
        }
    }

    fn publish_to_run(
        &self,
        channel: &str,
        payload: &[u8],
        run: Option<&str>,
    ) -> anyhow::Result<Delivery> {
        let arguments = [
            channel.as_bytes(),
            payload,
            run.unwrap_or_default().as_bytes(),
        ];
        Ok(match self.eval_on_run(PUBLISH_TO_RUN, &arguments)? {
            None => Delivery::Published,
            Some(other) => Delivery::OtherRun(other),
        })
    }

    fn confirm_sent(&self, run: Option<&str>) -> anyhow::Result<()> {
        match self.eval_on_run(STILL_RUN, &[run.unwrap_or_default().as_bytes()])? {
            None => Ok(()),
            Some(other) => Err(restarted_since_published(&other)),
        }
    }
}

impl RedisPublisher {
    /// Runs `script` ([`PUBLISH_TO_RUN`] or [`STILL_RUN`]: an integer when it ran on
    /// the run asked for, else `INFO server`) with `arguments`; `Some` names the other
    /// run Redis is. An empty run id (none known) never matches.
    fn eval_on_run(&self, script: &str, arguments: &[&[u8]]) -> anyhow::Result<Option<RedisRun>> {
        use spin_sdk::redis::{RedisParameter, RedisResult};
        let connection = self.take_connection()?;
        let bytes = |value: &[u8]| RedisParameter::Binary(value.to_vec());
        let mut parameters = vec![bytes(script.as_bytes()), RedisParameter::Int64(0)];
        parameters.extend(arguments.iter().map(|argument| bytes(argument)));
        let reply = connection
            .execute("EVAL", &parameters)
            .map_err(|err| anyhow!("{err:?}"))
            .with_context(|| format!("Redis at `{}`", self.address))?;
        // Kept only after a success: after a failure the next command reconnects.
        self.connection.replace(Some(connection));
        let info = match reply.as_slice() {
            [RedisResult::Int64(_)] => return Ok(None),
            [RedisResult::Binary(bytes)] => String::from_utf8_lossy(bytes).into_owned(),
            [RedisResult::Status(text)] => text.clone(),
            other => bail!("Redis at `{}`: unexpected reply {other:?}", self.address),
        };
        RedisRun::from_info(&info).map(Some).ok_or_else(|| {
            anyhow!(
                "Redis at `{}`: INFO server has no run_id or uptime",
                self.address
            )
        })
    }
}

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod tests;
