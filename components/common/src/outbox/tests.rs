use super::testing::{MemoryPublisher, pending, pending_traceparents};
use super::*;
use crate::events::{ExpirationComplete, OrderCancelled, TicketRef};
use crate::sqlite::testing::MemoryDb;
use crate::sqlite::transaction;
use crate::testing::traceparent;

const NOW: u64 = 1_795_514_580;
const SOURCE: &str = "/tessera/test";

/// A service's schema with the outbox in its first migration, as every publisher has.
const TABLES: Schema = Schema {
    migrations: &[&[SCHEMA, META_SCHEMA]],
};

fn db() -> MemoryDb {
    let db = MemoryDb::new();
    sqlite::migrate(&db, &TABLES).unwrap();
    db
}

fn expired(order: &str) -> Event {
    ExpirationComplete {
        order_id: order.into(),
    }
    .into()
}

fn enqueue_committed(db: &MemoryDb, events: &[Event]) {
    transaction(db, || -> anyhow::Result<()> {
        for event in events {
            enqueue(db, event, SOURCE, NOW)?;
        }
        Ok(())
    })
    .unwrap();
}

fn orders(publisher: &MemoryPublisher) -> Vec<String> {
    publisher
        .events()
        .into_iter()
        .map(|event| match event {
            Event::ExpirationComplete(e) => e.order_id,
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

#[test]
fn enqueued_events_are_stored_as_envelopes() {
    let db = db();
    let event: Event = OrderCancelled {
        id: "o1".into(),
        version: 1,
        ticket: TicketRef { id: "t1".into() },
    }
    .into();
    enqueue_committed(&db, std::slice::from_ref(&event));
    assert_eq!(pending(&db).unwrap(), vec![event]);

    let result = db
        .query("SELECT channel, payload, created_at FROM outbox", &[])
        .unwrap();
    let row = result.rows().next().unwrap();
    assert_eq!(row.get::<&str>("channel"), Some("order:cancelled"));
    assert_eq!(row.get::<u64>("created_at"), Some(NOW));
    let envelope: events::Envelope =
        serde_json::from_slice(row.get::<&[u8]>("payload").unwrap()).unwrap();
    assert_eq!(envelope.source, SOURCE);
    assert_eq!(envelope.event_type, "order:cancelled");
    assert_eq!(envelope.time.as_deref(), Some("2026-11-24T10:03:00Z"));
    assert_eq!(envelope.traceparent, None, "no current trace context");
    let id = uuid::Uuid::parse_str(&envelope.id).unwrap();
    assert_eq!(id.get_version_num(), 4);
}

#[test]
fn enqueued_events_carry_the_current_trace_context() {
    let db = db();
    let (first, second) = (traceparent(1), traceparent(2));
    trace::set_current(Some(first.clone()));
    enqueue_committed(&db, &[expired("o1")]);
    trace::without(|| enqueue_committed(&db, &[expired("o2")]));
    trace::set_current(Some(second.clone()));
    enqueue_committed(&db, &[expired("o3")]);
    trace::set_current(None);
    enqueue_committed(&db, &[expired("o4")]);
    assert_eq!(
        pending_traceparents(&db).unwrap(),
        [
            Some(first.to_string()),
            None,
            Some(second.to_string()),
            None
        ]
    );

    // Relayed as queued: consumers see the context of what caused each event.
    let publisher = MemoryPublisher::default();
    relay(&db, &publisher).unwrap();
    let published: Vec<_> = publisher
        .published()
        .iter()
        .map(|(_, payload)| trace::of_message(payload))
        .collect();
    assert_eq!(published, [Some(first), None, Some(second), None]);
}

#[test]
fn each_event_gets_its_own_id() {
    let db = db();
    enqueue_committed(&db, &[expired("o1"), expired("o1")]);
    let publisher = MemoryPublisher::default();
    relay(&db, &publisher).unwrap();
    let ids: Vec<String> = publisher
        .published()
        .iter()
        .map(|(_, payload)| {
            serde_json::from_slice::<events::Envelope>(payload)
                .unwrap()
                .id
        })
        .collect();
    assert_ne!(ids[0], ids[1]);
}

#[test]
fn a_rolled_back_transaction_enqueues_nothing() {
    let db = db();
    let result = transaction(&db, || -> anyhow::Result<()> {
        enqueue(&db, &expired("o1"), SOURCE, NOW)?;
        anyhow::bail!("the change failed");
    });
    assert!(result.is_err());
    assert_eq!(pending(&db).unwrap(), vec![]);
}

#[test]
fn a_rolled_back_transaction_leaves_its_relay_nothing_to_publish() {
    let db = db();
    let relay = Relay::open(&db, &TABLES).unwrap();
    let _ = transaction(&db, || -> anyhow::Result<()> {
        enqueue(&db, &expired("o1"), SOURCE, NOW)?;
        anyhow::bail!("the change failed");
    });
    assert!(!relay.is_due());
    let publisher = MemoryPublisher::default();
    relay.finish_with(&db, &publisher);
    assert!(publisher.published().is_empty());
}

#[test]
fn the_writer_claims_its_events_as_it_enqueues_them() {
    let db = db();
    enqueue_committed(&db, &[expired("o1")]);
    // Another instance's relay leaves them to the writer's ...
    assert!(!has_pending(&db, NOW).unwrap());
    assert_eq!(claim(&db, NOW + CLAIM_SECONDS - 1).unwrap().len(), 0);
    // ... unless the writer died before relaying: then they go once the lease is over.
    assert_eq!(claim(&db, NOW + CLAIM_SECONDS).unwrap().len(), 1);
}

#[test]
fn the_writer_relays_its_own_events_with_a_read_and_a_delete() {
    let db = db();
    let relay = Relay::open(&db, &TABLES).unwrap();
    enqueue_committed(&db, &[expired("o1"), expired("o2")]);
    let publisher = MemoryPublisher::default();
    let before = db.statements_run();
    relay.finish_with(&db, &publisher);
    assert_eq!(
        db.statements_run() - before,
        2,
        "the Redis run it last published to, and the DELETE: no search, no claim"
    );
    assert_eq!(orders(&publisher), ["o1", "o2"]);
    assert!(pending(&db).unwrap().is_empty());
}

#[test]
fn relay_publishes_in_order_and_empties_the_outbox() {
    let db = db();
    enqueue_committed(&db, &[expired("o1"), expired("o2")]);
    enqueue_committed(&db, &[expired("o3")]);
    let publisher = MemoryPublisher::default();

    assert_eq!(relay(&db, &publisher).unwrap(), 3);
    assert_eq!(orders(&publisher), ["o1", "o2", "o3"]);
    assert_eq!(pending(&db).unwrap(), vec![]);

    // Nothing left: a second relay publishes nothing.
    assert_eq!(relay(&db, &publisher).unwrap(), 0);
    assert_eq!(publisher.published().len(), 3);
}

#[test]
fn a_failure_stops_the_relay_and_gives_back_the_whole_batch_in_order() {
    let db = db();
    enqueue_committed(&db, &[expired("o1"), expired("o2"), expired("o3")]);
    let publisher = MemoryPublisher::default();
    publisher.fail_after(1);

    let err = relay(&db, &publisher).unwrap_err();
    assert!(
        format!("{err:#}").contains("Failed to publish outbox row 2 on `expiration:complete`"),
        "{err:#}"
    );
    assert_eq!(orders(&publisher), ["o1"]);
    // o1 too: Redis accepted it just before it went away, and may never have sent it.
    assert_eq!(
        pending(&db).unwrap(),
        vec![expired("o1"), expired("o2"), expired("o3")]
    );

    // Still down: nothing moves, and relay_or_log does not fail the caller. The failed
    // rows were released, so the next relay tries them again at once.
    relay_or_log(&db, &publisher);
    assert_eq!(pending(&db).unwrap().len(), 3);
    let unclaimed = db
        .query(
            "SELECT COUNT(*) AS n FROM outbox WHERE claimed_until = 0",
            &[],
        )
        .unwrap();
    assert_eq!(unclaimed.rows().next().unwrap().get::<u64>("n"), Some(3));

    publisher.come_back();
    enqueue_committed(&db, &[expired("o4")]);
    assert_eq!(relay(&db, &publisher).unwrap(), 4);
    assert_eq!(orders(&publisher), ["o1", "o1", "o2", "o3", "o4"]);
    assert_eq!(pending(&db).unwrap(), vec![]);
}

#[test]
fn a_failed_delete_publishes_the_row_again_once_the_claim_expires() {
    // Published but not deleted: the row goes out again later (consumers are idempotent).
    let db = db();
    enqueue_committed(&db, &[expired("o1")]);
    let publisher = MemoryPublisher::default();
    db.fail_statements_containing("DELETE FROM outbox");
    assert!(relay_at(&db, &publisher, NOW).is_err());
    db.heal();
    // Still claimed by the relay that failed.
    assert_eq!(
        relay_at(&db, &publisher, NOW + CLAIM_SECONDS - 1).unwrap(),
        0
    );
    assert_eq!(relay_at(&db, &publisher, NOW + CLAIM_SECONDS).unwrap(), 1);
    assert_eq!(orders(&publisher), ["o1", "o1"]);
}

/// Relays another batch from inside its first publish, as a concurrent instance would.
struct Concurrent<'a> {
    db: &'a MemoryDb,
    inner: MemoryPublisher,
    other: MemoryPublisher,
    relayed: std::cell::Cell<bool>,
}

impl Publisher for Concurrent<'_> {
    fn publish(&self, channel: &str, payload: &[u8]) -> anyhow::Result<()> {
        if !self.relayed.replace(true) {
            relay_at(self.db, &self.other, NOW).unwrap();
        }
        self.inner.publish(channel, payload)
    }
}

#[test]
fn concurrent_relays_publish_each_row_once() {
    let db = db();
    enqueue_committed(&db, &[expired("o1"), expired("o2")]);
    let publisher = Concurrent {
        db: &db,
        inner: MemoryPublisher::default(),
        other: MemoryPublisher::default(),
        relayed: Default::default(),
    };
    assert_eq!(relay_at(&db, &publisher, NOW).unwrap(), 2);
    assert_eq!(orders(&publisher.inner), ["o1", "o2"]);
    assert_eq!(publisher.other.published(), vec![]);
    assert_eq!(pending(&db).unwrap(), vec![]);
}

#[test]
fn a_large_backlog_drains_in_batches() {
    let db = db();
    let backlog: Vec<Event> = (0..250).map(|i| expired(&format!("o{i:03}"))).collect();
    enqueue_committed(&db, &backlog);
    let publisher = MemoryPublisher::default();
    assert_eq!(relay(&db, &publisher).unwrap(), 250);
    let published = orders(&publisher);
    let mut sorted = published.clone();
    sorted.sort();
    assert_eq!(published, sorted);
    assert_eq!(pending(&db).unwrap(), vec![]);
}

#[test]
fn an_unreadable_outbox_is_an_error() {
    let db = MemoryDb::new();
    let err = relay(&db, &MemoryPublisher::default()).unwrap_err();
    assert!(
        format!("{err:#}").contains("no such table: outbox"),
        "{err:#}"
    );
}

#[test]
fn opening_a_new_database_creates_the_outbox() {
    let db = MemoryDb::new();
    let relay = Relay::open(&db, &TABLES).unwrap();
    assert!(!relay.is_due());
    assert_eq!(sqlite::schema_version(&db).unwrap(), 1);
    assert_eq!(pending(&db).unwrap(), vec![]);
}

#[test]
fn a_read_of_a_quiet_service_costs_one_statement_and_no_relay() {
    let db = db();
    let publisher = MemoryPublisher::default();
    let before = db.statements_run();
    let relay = Relay::open(&db, &TABLES).unwrap();
    assert!(!relay.is_due());
    relay.finish_with(&db, &publisher);
    assert_eq!(
        db.statements_run() - before,
        1,
        "the schema and backlog check"
    );
    assert!(publisher.published().is_empty());
}

#[test]
fn work_that_queues_an_event_relays_it_after_whatever_it_answered() {
    let db = db();
    let publisher = MemoryPublisher::default();
    let relay = Relay::open(&db, &TABLES).unwrap();
    enqueue_committed(&db, &[expired("new")]);
    assert!(relay.is_due());
    relay.finish_with(&db, &publisher);
    assert_eq!(orders(&publisher), ["new"]);
    assert!(pending(&db).unwrap().is_empty());
}

#[test]
fn a_backlog_found_at_open_is_relayed_after_a_read() {
    let db = db();
    let publisher = MemoryPublisher::default();
    publisher.go_down();
    enqueue_committed(&db, &[expired("left-behind")]);
    Relay::open(&db, &TABLES)
        .unwrap()
        .finish_with(&db, &publisher);
    assert_eq!(pending(&db).unwrap().len(), 1, "Redis down: still queued");

    publisher.come_back();
    let relay = Relay::open(&db, &TABLES).unwrap();
    assert!(relay.is_due(), "the backlog makes even a read relay");
    relay.finish_with(&db, &publisher);
    assert_eq!(orders(&publisher), ["left-behind"]);
}

#[test]
fn rows_claimed_by_a_live_relay_are_not_a_backlog() {
    let db = db();
    enqueue_committed(&db, &[expired("o1")]);
    claim(&db, now()).unwrap();
    assert!(!Relay::open(&db, &TABLES).unwrap().is_due());
}

#[test]
fn redis_runs_are_read_from_info_server() {
    let info = "# Server\r\nredis_version:7.0.15\r\nrun_id:abc123\r\nuptime_in_seconds:2\r\n";
    assert_eq!(
        RedisRun::from_info(info),
        Some(RedisRun {
            id: "abc123".into(),
            uptime_seconds: 2
        })
    );
    assert_eq!(RedisRun::from_info("# Server\r\nrun_id:abc\r\n"), None);
    assert_eq!(
        RedisRun::from_info("run_id:a\r\nuptime_in_seconds:soon"),
        None
    );
}

#[test]
fn events_wait_while_a_restarted_redis_is_young_and_go_out_after() {
    let db = db();
    let publisher = MemoryPublisher::default();
    // The first publish ever goes out at once, even to a young Redis.
    publisher.set_redis_run("first", 0);
    enqueue_committed(&db, &[expired("o1")]);
    assert_eq!(relay(&db, &publisher).unwrap(), 1);

    // Redis restarted: a new run, one second old. Subscribers may not be back yet.
    publisher.set_redis_run("second", 1);
    enqueue_committed(&db, &[expired("o2")]);
    let err = relay(&db, &publisher).unwrap_err();
    assert!(format!("{err:#}").contains("restarted 1 s ago"), "{err:#}");
    assert_eq!(orders(&publisher), ["o1"], "o2 waits");
    assert_eq!(pending(&db).unwrap().len(), 1);

    // Settled: the held event goes out, and the run is remembered.
    publisher.set_redis_run("second", REDIS_SETTLE_SECONDS);
    assert_eq!(relay(&db, &publisher).unwrap(), 1);
    assert_eq!(orders(&publisher), ["o1", "o2"]);
    publisher.set_redis_run("second", 0);
    enqueue_committed(&db, &[expired("o3")]);
    assert_eq!(relay(&db, &publisher).unwrap(), 1, "same run: no wait");
}

#[test]
fn a_restart_between_the_check_and_the_publish_publishes_nothing() {
    let db = db();
    let publisher = MemoryPublisher::default();
    publisher.set_redis_run("first", 100);
    enqueue_committed(&db, &[expired("o1")]);
    assert_eq!(relay(&db, &publisher).unwrap(), 1);

    // The relay checks "first", then Redis restarts before its publish lands (a dropped
    // connection is retried on the new server): the new run's subscribers are not back.
    enqueue_committed(&db, &[expired("o2"), expired("o3")]);
    publisher.restart_before_next_publish("second");
    let err = relay(&db, &publisher).unwrap_err();
    assert!(format!("{err:#}").contains("restarted since"), "{err:#}");
    assert_eq!(orders(&publisher), ["o1"]);
    assert_eq!(
        pending(&db).unwrap().len(),
        2,
        "both wait, released for the next relay"
    );

    // The next relay sees the young run and holds; once settled, both go out in order.
    let err = relay(&db, &publisher).unwrap_err();
    assert!(format!("{err:#}").contains("restarted 0 s ago"), "{err:#}");
    publisher.set_redis_run("second", REDIS_SETTLE_SECONDS);
    assert_eq!(relay(&db, &publisher).unwrap(), 2);
    assert_eq!(orders(&publisher), ["o1", "o2", "o3"]);
}

#[test]
fn events_redis_accepted_but_lost_in_a_restart_are_published_again() {
    let db = db();
    let publisher = MemoryPublisher::default();
    publisher.set_redis_run("first", 100);
    enqueue_committed(&db, &[expired("o1")]);
    assert_eq!(relay(&db, &publisher).unwrap(), 1);

    // Redis answers the publish of o2, then dies before it has written it to its
    // subscribers, and comes back as a new run.
    enqueue_committed(&db, &[expired("o2")]);
    publisher.restart_after_next_publish("second");
    let err = relay(&db, &publisher).unwrap_err();
    assert!(
        format!("{err:#}").contains("may not have sent them to its subscribers"),
        "{err:#}"
    );
    assert_eq!(publisher.lost().len(), 1, "o2 was accepted, then lost");
    assert_eq!(orders(&publisher), ["o1"]);
    assert_eq!(pending(&db).unwrap(), vec![expired("o2")], "o2 stays");

    // The restarted Redis is young: held. Settled: o2 goes out again, before o3.
    enqueue_committed(&db, &[expired("o3")]);
    let err = relay(&db, &publisher).unwrap_err();
    assert!(format!("{err:#}").contains("restarted 0 s ago"), "{err:#}");
    publisher.set_redis_run("second", REDIS_SETTLE_SECONDS);
    assert_eq!(relay(&db, &publisher).unwrap(), 2);
    assert_eq!(orders(&publisher), ["o1", "o2", "o3"]);
    assert_eq!(pending(&db).unwrap(), vec![]);
}
