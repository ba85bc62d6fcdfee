use common::events::{ExpirationComplete, OrderCancelled, TicketRef};
use common::outbox::testing::MemoryPublisher;
use common::testing::traceparent;

use super::*;
use crate::testing::*;

/// 2026-11-24T10:03:30Z, the `expires_at` of `wit/README.md`'s example.
const DEADLINE_MS: u64 = 1_795_514_610_000;
const EXPIRES_AT: &str = "2026-11-24T10:03:30Z";

/// One replica: its own publisher, the shared Redis.
fn deliver(redis: &MemoryRedis, publisher: &MemoryPublisher, payload: &[u8], now_ms: u64) {
    handle(redis, publisher, payload, now_ms).unwrap();
}

#[test]
fn order_created_is_scheduled() {
    let payload = message(order_created("o1", EXPIRES_AT));
    assert_eq!(
        parse(&payload),
        Message::Schedule {
            order: id("o1"),
            deadline_ms: DEADLINE_MS
        }
    );

    let redis = MemoryRedis::default();
    let publisher = MemoryPublisher::default();
    deliver(&redis, &publisher, &payload, NOW_MS);
    assert_eq!(redis.entries(), vec![("o1".to_owned(), DEADLINE_MS)]);
    assert_eq!(redis.timer("o1"), Some(DEADLINE_MS));
    assert!(publisher.published().is_empty());
}

#[test]
fn the_contracts_example_is_understood() {
    // `order:created` exactly as in wit/README.md, other offsets allowed by RFC 3339.
    let example = br#"{
      "specversion": "1.0",
      "id": "2d3e4f5a-6b7c-4d8e-9fa0-1b2c3d4e5f03",
      "type": "order:created",
      "source": "/tessera/orders",
      "time": "2026-11-24T10:00:30Z",
      "datacontenttype": "application/json",
      "data": {
        "id": "9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5",
        "version": 0,
        "status": "created",
        "user_id": "3f4e5d6c-7b8a-4998-8776-655443322110",
        "expires_at": "2026-11-24T11:03:30+01:00",
        "ticket": { "id": "5b3c9f1e-8d2a-4c6b-9e0f-1a2b3c4d5e6f", "price_cents": 1099 }
      }
    }"#;
    assert_eq!(
        parse(example),
        Message::Schedule {
            order: id("9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5"),
            deadline_ms: DEADLINE_MS
        }
    );
}

#[test]
fn duplicate_order_created_changes_nothing() {
    let redis = MemoryRedis::default();
    let publisher = MemoryPublisher::default();
    let payload = message(order_created("o1", EXPIRES_AT));
    for now in [NOW_MS, NOW_MS, NOW_MS + 5_000] {
        deliver(&redis, &publisher, &payload, now);
    }
    assert_eq!(redis.entries(), vec![("o1".to_owned(), DEADLINE_MS)]);
    assert_eq!(redis.timer("o1"), Some(DEADLINE_MS));
    assert!(publisher.published().is_empty());
}

#[test]
fn an_order_created_after_its_deadline_expires_at_once() {
    let redis = MemoryRedis::default();
    let publisher = MemoryPublisher::default();
    let payload = message(order_created("o1", EXPIRES_AT));
    deliver(&redis, &publisher, &payload, DEADLINE_MS + 1);
    assert_eq!(expired_orders(&publisher), ["o1"]);
    assert_eq!(redis.timer("o1"), None);
    assert!(redis.entries().is_empty());

    // A duplicate, on this or another replica: no second expiry.
    let other = MemoryPublisher::default();
    deliver(&redis, &other, &payload, DEADLINE_MS + 2);
    deliver(&redis, &publisher, &payload, DEADLINE_MS + 3);
    assert!(other.published().is_empty());
    assert_eq!(expired_orders(&publisher), ["o1"]);
}

#[test]
fn a_fired_timer_expires_its_order() {
    let redis = MemoryRedis::default();
    let publisher = MemoryPublisher::default();
    deliver(
        &redis,
        &publisher,
        &message(order_created("o1", EXPIRES_AT)),
        NOW_MS,
    );
    assert_eq!(parse(b"expiration:order:o1"), Message::TimerFired(id("o1")));
    deliver(&redis, &publisher, b"expiration:order:o1", DEADLINE_MS);
    assert_eq!(expired_orders(&publisher), ["o1"]);
    assert!(redis.entries().is_empty());
}

#[test]
fn a_fired_timer_is_trusted_over_a_clock_that_lags_redis() {
    let redis = MemoryRedis::default();
    let publisher = MemoryPublisher::default();
    deliver(
        &redis,
        &publisher,
        &message(order_created("o1", EXPIRES_AT)),
        NOW_MS,
    );
    // This host's clock is 50 ms behind Redis': the sweep alone would not see it due.
    deliver(&redis, &publisher, b"expiration:order:o1", DEADLINE_MS - 50);
    assert_eq!(expired_orders(&publisher), ["o1"]);
}

#[test]
fn every_replica_gets_the_notification_and_one_publishes() {
    let redis = MemoryRedis::default();
    let replicas: Vec<MemoryPublisher> = (0..3).map(|_| MemoryPublisher::default()).collect();
    let created = message(order_created("o1", EXPIRES_AT));
    for replica in &replicas {
        deliver(&redis, replica, &created, NOW_MS);
    }
    for replica in &replicas {
        deliver(&redis, replica, b"expiration:order:o1", DEADLINE_MS);
    }
    let published: Vec<String> = replicas.iter().flat_map(expired_orders).collect();
    assert_eq!(published, ["o1"]);
}

#[test]
fn a_missed_notification_is_honoured_by_the_next_message() {
    // The timer fired while no replica was subscribed. Any later message sweeps:
    // another order, another order's timer, or a key that is not ours at all.
    for next in [
        message(order_created("o2", "2026-11-24T10:13:30Z")),
        b"expiration:order:o3".to_vec(),
        b"sessions:abc".to_vec(),
    ] {
        let redis = MemoryRedis::default();
        let publisher = MemoryPublisher::default();
        let created = message(order_created("o1", EXPIRES_AT));
        deliver(&redis, &publisher, &created, NOW_MS);
        deliver(&redis, &publisher, &next, DEADLINE_MS + 1);
        assert_eq!(
            expired_orders(&publisher),
            ["o1"],
            "{}",
            String::from_utf8_lossy(&next)
        );
    }
}

#[test]
fn keys_that_are_not_our_timers_are_ignored() {
    for key in [
        &b"sessions:abc"[..],
        b"expiration:done:o1",
        b"expiration:due",
        b"o1",
        b"{user1}:cart",
        b"\xff\xfe",
    ] {
        assert_eq!(parse(key), Message::Ignored, "{key:?}");
    }
}

#[test]
fn malformed_and_foreign_messages_are_acknowledged() {
    let bad_time = order_created("o1", "in three minutes");
    let mut cancelled_status = order_created("o2", EXPIRES_AT);
    cancelled_status.status = OrderStatus::Cancelled;
    let payloads: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"not json".to_vec(),
        b"{".to_vec(),
        b"{}".to_vec(),
        b" [1, 2]".to_vec(),
        br#"{"specversion":"0.3","id":"1","type":"order:created","source":"/x","data":{}}"#
            .to_vec(),
        br#"{"specversion":"1.0","id":"1","type":"order:created","source":"/x","data":{"id":"o1"}}"#
            .to_vec(),
        br#"{"specversion":"1.0","id":"1","type":"order:deleted","source":"/x","data":{}}"#
            .to_vec(),
        message(order_created("", EXPIRES_AT)),
        message(order_created("o 1", EXPIRES_AT)),
        message(bad_time),
        message(cancelled_status),
        message(OrderCancelled {
            id: "o1".into(),
            version: 1,
            ticket: TicketRef { id: "t1".into() },
        }),
        // Our own event, should a trigger ever route it here.
        message(ExpirationComplete {
            order_id: "o1".into(),
        }),
        b"expiration:order:".to_vec(),
        b"expiration:order:o 1".to_vec(),
        b"expiration:order:\xff".to_vec(),
    ];
    let redis = MemoryRedis::default();
    let publisher = MemoryPublisher::default();
    for payload in &payloads {
        assert_eq!(
            parse(payload),
            Message::Ignored,
            "{}",
            String::from_utf8_lossy(payload)
        );
        deliver(&redis, &publisher, payload, NOW_MS);
    }
    assert!(redis.entries().is_empty());
    assert!(publisher.published().is_empty());
}

#[test]
fn redis_failures_are_errors() {
    let created = message(order_created("o1", EXPIRES_AT));

    // Scheduling fails: an error, and the sweep still ran.
    let redis = MemoryRedis::default();
    let publisher = MemoryPublisher::default();
    redis.add(&id("old"), NOW_MS).unwrap();
    redis.fail(Op::Add);
    assert!(handle(&redis, &publisher, &created, NOW_MS).is_err());
    assert_eq!(expired_orders(&publisher), ["old"]);

    // The sweep fails (alone, or as well).
    for ops in [&[Op::Due][..], &[Op::Due, Op::Add]] {
        let redis = MemoryRedis::default();
        for &op in ops {
            redis.fail(op);
        }
        assert!(
            handle(&redis, &publisher, &created, NOW_MS).is_err(),
            "{ops:?}"
        );
    }

    // Publishing the fired timer's expiry fails: due again, published by a later sweep.
    let redis = MemoryRedis::default();
    let publisher = MemoryPublisher::default();
    deliver(&redis, &publisher, &created, NOW_MS);
    publisher.go_down();
    let err = handle(&redis, &publisher, b"expiration:order:o1", DEADLINE_MS).unwrap_err();
    assert!(format!("{err:#}").contains("due again"), "{err:#}");
    assert_eq!(redis.entries(), vec![("o1".to_owned(), DEADLINE_MS)]);
    publisher.come_back();
    deliver(&redis, &publisher, b"sessions:abc", DEADLINE_MS + 1_000);
    assert_eq!(expired_orders(&publisher), ["o1"]);
}

#[test]
fn expiries_wait_while_a_restarted_redis_is_young() {
    let redis = MemoryRedis::default();
    let publisher = MemoryPublisher::default();
    let after_deadline = DEADLINE_MS + 1;
    publisher.set_redis_run("first", 100);
    let first = message(order_created("o1", EXPIRES_AT));
    deliver(&redis, &publisher, &first, after_deadline);
    assert_eq!(
        expired_orders(&publisher),
        ["o1"],
        "a first run: published at once"
    );

    // Redis restarted (its data kept): a due order waits while subscribers come back.
    publisher.set_redis_run("second", 1);
    let second = message(order_created("o2", EXPIRES_AT));
    assert!(handle(&redis, &publisher, &second, after_deadline).is_err());
    assert_eq!(expired_orders(&publisher), ["o1"]);
    assert_eq!(redis.entries(), [("o2".to_owned(), DEADLINE_MS)]);

    // Settled: the next message's sweep publishes it.
    publisher.set_redis_run("second", 3);
    deliver(&redis, &publisher, b"not an event", after_deadline);
    assert_eq!(expired_orders(&publisher), ["o1", "o2"]);
}

/// One replica handling `payload` as `on_message` does: in the message's trace context.
fn serve(redis: &MemoryRedis, publisher: &MemoryPublisher, payload: &[u8], now_ms: u64) {
    common::message::serve(payload, || handle(redis, publisher, payload, now_ms)).unwrap();
}

#[test]
fn a_fired_timers_expiry_carries_the_trace_of_its_order_created() {
    let redis = MemoryRedis::default();
    let publisher = MemoryPublisher::default();
    let consumer = traceparent(1);
    let created = traced_message(order_created("o1", EXPIRES_AT), Some(&consumer));
    serve(&redis, &publisher, &created, NOW_MS);
    assert!(publisher.published().is_empty());

    // The notification names only the key: no context of its own.
    serve(&redis, &publisher, b"expiration:order:o1", DEADLINE_MS);
    assert_eq!(expired_orders(&publisher), ["o1"]);
    assert_eq!(expiry_traces(&publisher), [Some(consumer.to_string())]);
}

#[test]
fn a_swept_expiry_carries_the_trace_of_its_order_created_not_the_sweeping_messages() {
    let first = traceparent(1);
    let other = traceparent(2);
    for next in [
        // Another traced order:created, still pending itself.
        traced_message(order_created("o2", "2026-11-24T10:13:30Z"), Some(&other)),
        b"sessions:abc".to_vec(),
    ] {
        let redis = MemoryRedis::default();
        let publisher = MemoryPublisher::default();
        let created = traced_message(order_created("o1", EXPIRES_AT), Some(&first));
        serve(&redis, &publisher, &created, NOW_MS);
        serve(&redis, &publisher, &next, DEADLINE_MS + 1);
        assert_eq!(expired_orders(&publisher), ["o1"]);
        assert_eq!(expiry_traces(&publisher), [Some(first.to_string())]);
    }
}

#[test]
fn an_order_created_without_a_trace_expires_without_one() {
    let invalid = br#"{"specversion":"1.0","id":"1","type":"order:created","source":"/tessera/orders","traceparent":"00-abc","data":{"id":"o2","version":0,"status":"created","user_id":"u","expires_at":"2026-11-24T10:03:30Z","ticket":{"id":"t1","price_cents":1}}}"#;
    for created in [message(order_created("o2", EXPIRES_AT)), invalid.to_vec()] {
        let redis = MemoryRedis::default();
        let publisher = MemoryPublisher::default();
        serve(&redis, &publisher, &created, NOW_MS);
        assert_eq!(redis.kept_trace_of("o2"), None, "nothing written");
        // Swept by a traced message: still none.
        let later = traced_message(
            order_created("o3", "2026-11-24T10:13:30Z"),
            Some(&traceparent(3)),
        );
        serve(&redis, &publisher, &later, DEADLINE_MS + 1);
        assert_eq!(expired_orders(&publisher), ["o2"]);
        assert_eq!(expiry_traces(&publisher), [None]);
    }
}

#[test]
fn a_trace_that_cannot_be_kept_or_read_costs_the_trace_not_the_expiry() {
    let consumer = traceparent(1);
    let created = traced_message(order_created("o1", EXPIRES_AT), Some(&consumer));
    for op in [Op::KeepTrace, Op::KeptTrace] {
        let redis = MemoryRedis::default();
        let publisher = MemoryPublisher::default();
        redis.fail(op);
        serve(&redis, &publisher, &created, NOW_MS);
        assert_eq!(redis.entries(), [("o1".to_owned(), DEADLINE_MS)], "{op:?}");
        serve(&redis, &publisher, b"expiration:order:o1", DEADLINE_MS);
        assert_eq!(expired_orders(&publisher), ["o1"], "{op:?}");
        assert_eq!(expiry_traces(&publisher), [None], "{op:?}");
    }
}
