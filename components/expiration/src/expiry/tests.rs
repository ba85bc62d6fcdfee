use std::sync::Barrier;

use common::events::Envelope;
use common::outbox::testing::MemoryPublisher;

use super::*;
use crate::testing::*;

const MINUTE: u64 = 60_000;

fn scheduled(redis: &MemoryRedis, entries: &[(&str, u64)]) {
    for &(order, deadline_ms) in entries {
        redis.add(&id(order), deadline_ms).unwrap();
    }
}

#[test]
fn a_future_deadline_gets_an_entry_and_a_timer() {
    let redis = MemoryRedis::default();
    let deadline = NOW_MS + 3 * MINUTE;
    assert_eq!(
        schedule(&redis, &id("o1"), deadline, NOW_MS, None).unwrap(),
        Scheduled::Pending
    );
    assert_eq!(redis.entries(), vec![("o1".to_owned(), deadline)]);
    assert_eq!(redis.timer("o1"), Some(deadline));
}

#[test]
fn scheduling_twice_is_scheduling_once() {
    let redis = MemoryRedis::default();
    let deadline = NOW_MS + 3 * MINUTE;
    for now in [NOW_MS, NOW_MS + 1_000] {
        assert_eq!(
            schedule(&redis, &id("o1"), deadline, now, None).unwrap(),
            Scheduled::Pending
        );
    }
    assert_eq!(redis.entries(), vec![("o1".to_owned(), deadline)]);
    assert_eq!(redis.timer("o1"), Some(deadline));
}

#[test]
fn a_deadline_already_past_is_due_now_without_a_timer() {
    let redis = MemoryRedis::default();
    let publisher = MemoryPublisher::default();
    for (order, deadline) in [("past", NOW_MS - MINUTE), ("exactly", NOW_MS)] {
        assert_eq!(
            schedule(&redis, &id(order), deadline, NOW_MS, None).unwrap(),
            Scheduled::DueNow
        );
        assert_eq!(redis.timer(order), None);
    }
    assert_eq!(sweep(&redis, &publisher, NOW_MS).unwrap(), 2);
    assert_eq!(expired_orders(&publisher), ["past", "exactly"]);
    assert!(redis.entries().is_empty());
}

#[test]
fn a_sweep_expires_what_is_due_earliest_first_and_only_that() {
    let redis = MemoryRedis::default();
    let publisher = MemoryPublisher::default();
    scheduled(
        &redis,
        &[
            ("later", NOW_MS + 1),
            ("due", NOW_MS - 1),
            ("overdue", NOW_MS - MINUTE),
            ("now", NOW_MS),
        ],
    );
    assert_eq!(sweep(&redis, &publisher, NOW_MS).unwrap(), 3);
    assert_eq!(expired_orders(&publisher), ["overdue", "due", "now"]);
    assert_eq!(redis.entries(), vec![("later".to_owned(), NOW_MS + 1)]);
    for order in ["overdue", "due", "now"] {
        assert!(redis.is_marked_done(order), "{order}");
    }

    // Nothing due: nothing published.
    assert_eq!(sweep(&redis, &publisher, NOW_MS).unwrap(), 0);
    assert_eq!(publisher.published().len(), 3);
}

#[test]
fn the_event_is_an_expiration_complete_envelope() {
    let redis = MemoryRedis::default();
    let publisher = MemoryPublisher::default();
    scheduled(&redis, &[("o1", NOW_MS)]);
    // Half a second past the whole second: `time` has whole seconds.
    expire(&redis, &publisher, &id("o1"), NOW_MS, NOW_MS + 500).unwrap();

    let published = publisher.published();
    let [(channel, payload)] = published.as_slice() else {
        panic!("{published:?}");
    };
    assert_eq!(channel, "expiration:complete");
    let envelope: Envelope = serde_json::from_slice(payload).unwrap();
    assert_eq!(envelope.specversion, "1.0");
    assert_eq!(envelope.event_type, "expiration:complete");
    assert_eq!(envelope.source, "/tessera/expiration");
    assert_eq!(envelope.time.as_deref(), Some("2026-11-24T10:03:00Z"));
    assert_eq!(
        envelope.datacontenttype.as_deref(),
        Some("application/json")
    );
    assert_eq!(envelope.data, serde_json::json!({"order_id": "o1"}));
    let id = uuid::Uuid::parse_str(&envelope.id).unwrap();
    assert_eq!(id.get_version_num(), 4);
}

#[test]
fn an_order_whose_expiry_went_out_is_not_scheduled_again() {
    let redis = MemoryRedis::default();
    let publisher = MemoryPublisher::default();
    schedule(&redis, &id("o1"), NOW_MS - 1, NOW_MS, None).unwrap();
    sweep(&redis, &publisher, NOW_MS).unwrap();

    // A late duplicate order:created (e.g. relayed twice by the orders outbox).
    for deadline in [NOW_MS - 1, NOW_MS + MINUTE] {
        assert_eq!(
            schedule(&redis, &id("o1"), deadline, NOW_MS, None).unwrap(),
            Scheduled::AlreadyExpired
        );
    }
    assert!(redis.entries().is_empty());
    assert_eq!(redis.timer("o1"), None);
    sweep(&redis, &publisher, NOW_MS + 2 * MINUTE).unwrap();
    assert_eq!(expired_orders(&publisher), ["o1"]);
}

#[test]
fn an_entry_claimed_by_someone_else_is_not_published() {
    let redis = MemoryRedis::default();
    let publisher = MemoryPublisher::default();
    assert_eq!(
        expire(&redis, &publisher, &id("never-scheduled"), NOW_MS, NOW_MS).unwrap(),
        Expired::NotOurs
    );
    scheduled(&redis, &[("o1", NOW_MS)]);
    assert!(redis.claim(&id("o1")).unwrap());
    assert_eq!(
        expire(&redis, &publisher, &id("o1"), NOW_MS, NOW_MS).unwrap(),
        Expired::NotOurs
    );
    assert!(publisher.published().is_empty());
}

#[test]
fn a_failed_publish_puts_the_entry_back_for_a_later_sweep() {
    let redis = MemoryRedis::default();
    let publisher = MemoryPublisher::default();
    scheduled(&redis, &[("o1", NOW_MS - MINUTE)]);
    publisher.go_down();

    let err = sweep(&redis, &publisher, NOW_MS).unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("order o1 is due again"), "{message}");
    assert!(message.contains("Redis is down"), "{message}");
    // Back with its own deadline, not marked done.
    assert_eq!(redis.entries(), vec![("o1".to_owned(), NOW_MS - MINUTE)]);
    assert!(!redis.is_marked_done("o1"));

    publisher.come_back();
    assert_eq!(sweep(&redis, &publisher, NOW_MS + 1).unwrap(), 1);
    assert_eq!(expired_orders(&publisher), ["o1"]);
    assert!(redis.entries().is_empty());
}

#[test]
fn a_sweep_stops_at_the_first_failed_publish() {
    let redis = MemoryRedis::default();
    let publisher = MemoryPublisher::default();
    scheduled(
        &redis,
        &[("a", NOW_MS - 3), ("b", NOW_MS - 2), ("c", NOW_MS - 1)],
    );
    publisher.fail_after(1);
    assert!(sweep(&redis, &publisher, NOW_MS).is_err());
    assert_eq!(expired_orders(&publisher), ["a"]);
    assert_eq!(
        redis.entries(),
        vec![("b".to_owned(), NOW_MS - 2), ("c".to_owned(), NOW_MS - 1)]
    );

    publisher.come_back();
    assert_eq!(sweep(&redis, &publisher, NOW_MS).unwrap(), 2);
    assert_eq!(expired_orders(&publisher), ["a", "b", "c"]);
}

#[test]
fn an_entry_that_cannot_be_put_back_is_reported_lost() {
    let redis = MemoryRedis::default();
    let publisher = MemoryPublisher::default();
    scheduled(&redis, &[("o1", NOW_MS)]);
    publisher.go_down();
    redis.fail(Op::Add);
    let err = expire(&redis, &publisher, &id("o1"), NOW_MS, NOW_MS).unwrap_err();
    assert!(format!("{err:#}").contains("LOST"), "{err:#}");
}

#[test]
fn a_redis_restart_in_the_middle_of_an_expiry_delays_it_but_loses_nothing() {
    // Seen in the chaos run: the claim's ZREM went through, then Redis was restarting
    // ("connection refused") for the marker's SET and for the first put-backs.
    let redis = MemoryRedis::default();
    let publisher = MemoryPublisher::default();
    scheduled(&redis, &[("o1", NOW_MS)]);
    redis.fail_times(Op::MarkDone, 1);
    redis.fail_times(Op::Add, 3);
    let err = expire(&redis, &publisher, &id("o1"), NOW_MS, NOW_MS).unwrap_err();
    assert!(
        format!("{err:#}").contains("order o1 is due again"),
        "{err:#}"
    );
    assert_eq!(redis.entries(), [("o1".to_owned(), NOW_MS)]);

    assert_eq!(sweep(&redis, &publisher, NOW_MS).unwrap(), 1);
    assert_eq!(expired_orders(&publisher), ["o1"]);
}

#[test]
fn a_redis_restart_after_the_marker_clears_it_once_redis_is_back() {
    let redis = MemoryRedis::default();
    let publisher = MemoryPublisher::default();
    scheduled(&redis, &[("o1", NOW_MS)]);
    publisher.go_down();
    redis.fail_times(Op::UnmarkDone, 2);
    redis.fail_times(Op::Add, 2);
    assert!(expire(&redis, &publisher, &id("o1"), NOW_MS, NOW_MS).is_err());
    assert!(!redis.is_marked_done("o1"));
    assert_eq!(redis.entries(), [("o1".to_owned(), NOW_MS)]);

    publisher.come_back();
    assert_eq!(sweep(&redis, &publisher, NOW_MS).unwrap(), 1);
    assert_eq!(expired_orders(&publisher), ["o1"]);
}

#[test]
fn failing_to_mark_done_publishes_nothing_and_puts_the_entry_back() {
    let redis = MemoryRedis::default();
    let publisher = MemoryPublisher::default();
    scheduled(&redis, &[("o1", NOW_MS)]);
    redis.fail(Op::MarkDone);
    assert!(expire(&redis, &publisher, &id("o1"), NOW_MS, NOW_MS).is_err());
    assert!(expired_orders(&publisher).is_empty());
    assert_eq!(redis.entries(), [("o1".to_owned(), NOW_MS)]);
}

#[test]
fn a_failed_publish_clears_the_marker_so_a_later_sweep_publishes() {
    let redis = MemoryRedis::default();
    let publisher = MemoryPublisher::default();
    scheduled(&redis, &[("o1", NOW_MS)]);
    publisher.go_down();
    assert!(expire(&redis, &publisher, &id("o1"), NOW_MS, NOW_MS).is_err());
    publisher.come_back();
    assert_eq!(sweep(&redis, &publisher, NOW_MS).unwrap(), 1);
    assert_eq!(expired_orders(&publisher), ["o1"]);
}

#[test]
fn a_duplicate_order_created_during_an_expiry_publishes_nothing_more() {
    // Replica A claimed the entry and set the marker; before it published, replica B
    // got a late duplicate order:created: the marker was not set yet when B checked it,
    // so B put the entry back.
    let redis = MemoryRedis::default();
    let publisher = MemoryPublisher::default();
    scheduled(&redis, &[("o1", NOW_MS)]);
    assert!(redis.claim(&id("o1")).unwrap());
    assert!(redis.mark_done(&id("o1")).unwrap());
    redis.add(&id("o1"), NOW_MS).unwrap();
    // B's sweep finds the copy, but the marker says someone else owns the expiry.
    assert_eq!(sweep(&redis, &publisher, NOW_MS).unwrap(), 0);
    assert!(expired_orders(&publisher).is_empty());
    assert!(redis.entries().is_empty(), "the stale copy is gone");
}

#[test]
fn redis_failures_while_scheduling_are_errors() {
    for op in [Op::IsDone, Op::Add] {
        let redis = MemoryRedis::default();
        redis.fail(op);
        assert!(schedule(&redis, &id("o1"), NOW_MS + MINUTE, NOW_MS, None).is_err());
        redis.recover();
        assert!(redis.entries().is_empty(), "{op:?}");
        assert_eq!(redis.timer("o1"), None, "{op:?}");
    }

    // The entry, written first, survives a failed timer: a sweep still honours it.
    let redis = MemoryRedis::default();
    let publisher = MemoryPublisher::default();
    redis.fail(Op::ArmTimer);
    assert!(schedule(&redis, &id("o1"), NOW_MS + MINUTE, NOW_MS, None).is_err());
    redis.recover();
    sweep(&redis, &publisher, NOW_MS + MINUTE).unwrap();
    assert_eq!(expired_orders(&publisher), ["o1"]);
}

#[test]
fn redis_failures_while_sweeping_are_errors_and_lose_nothing() {
    for op in [Op::Due, Op::Claim] {
        let redis = MemoryRedis::default();
        let publisher = MemoryPublisher::default();
        scheduled(&redis, &[("o1", NOW_MS)]);
        redis.fail(op);
        assert!(sweep(&redis, &publisher, NOW_MS).is_err(), "{op:?}");
        assert!(publisher.published().is_empty());
        assert_eq!(redis.entries(), vec![("o1".to_owned(), NOW_MS)]);
    }
}

#[test]
fn a_backlog_is_swept_in_batches_up_to_a_bound() {
    let redis = MemoryRedis::default();
    let publisher = MemoryPublisher::default();
    let backlog = MAX_BATCHES * BATCH + 5;
    for n in 0..backlog {
        redis.add(&id(&format!("o{n:05}")), NOW_MS - 1).unwrap();
    }
    assert_eq!(
        sweep(&redis, &publisher, NOW_MS).unwrap(),
        MAX_BATCHES * BATCH
    );
    assert_eq!(redis.entries().len(), 5);
    assert_eq!(sweep(&redis, &publisher, NOW_MS).unwrap(), 5);
    let mut published = expired_orders(&publisher);
    published.dedup();
    assert_eq!(published.len(), backlog);
}

#[test]
fn a_replica_with_a_stale_view_publishes_nothing() {
    let redis = MemoryRedis::default();
    scheduled(&redis, &[("a", NOW_MS - 1), ("b", NOW_MS)]);
    let (first, second) = (MemoryPublisher::default(), MemoryPublisher::default());

    // The first replica reads the due entries, then the second sweeps them all.
    let seen = redis.due(NOW_MS, BATCH).unwrap();
    assert_eq!(sweep(&redis, &second, NOW_MS).unwrap(), 2);
    for due in seen {
        assert_eq!(
            expire(&redis, &first, &due.order, due.deadline_ms, NOW_MS).unwrap(),
            Expired::NotOurs
        );
    }
    assert!(first.published().is_empty());
    assert_eq!(expired_orders(&second), ["a", "b"]);
}

#[test]
fn replicas_sweeping_at_once_publish_each_expiry_once() {
    const REPLICAS: usize = 4;
    const ORDERS: usize = 600;
    let redis = MemoryRedis::default();
    for n in 0..ORDERS {
        schedule(&redis, &id(&format!("o{n:04}")), NOW_MS - 1, NOW_MS, None).unwrap();
    }
    let start = Barrier::new(REPLICAS);
    let published: Vec<String> = std::thread::scope(|scope| {
        let replicas: Vec<_> = (0..REPLICAS)
            .map(|_| {
                scope.spawn(|| {
                    let publisher = MemoryPublisher::default();
                    start.wait();
                    sweep(&redis, &publisher, NOW_MS).unwrap();
                    expired_orders(&publisher)
                })
            })
            .collect();
        replicas
            .into_iter()
            .flat_map(|replica| replica.join().unwrap())
            .collect()
    });
    let mut sorted = published.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(published.len(), ORDERS, "some order expired twice");
    assert_eq!(sorted.len(), ORDERS, "some order never expired");
    assert_eq!(redis.claims(), ORDERS);
    assert!(redis.entries().is_empty());
}

#[test]
fn the_trace_context_is_kept_until_a_day_after_the_deadline_and_published() {
    use crate::deadlines::DONE_RETENTION_SECONDS;
    use common::testing::traceparent;

    let redis = MemoryRedis::default();
    let publisher = MemoryPublisher::default();
    let (first, duplicate) = (traceparent(1), traceparent(2));
    let day = DONE_RETENTION_SECONDS * 1000;
    let deadline = NOW_MS + 3 * MINUTE;
    schedule(&redis, &id("o1"), deadline, NOW_MS, Some(&first)).unwrap();
    // A duplicate order:created (another delivery, another consumer span): the first stays.
    schedule(&redis, &id("o1"), deadline, NOW_MS, Some(&duplicate)).unwrap();
    assert_eq!(
        redis.kept_trace_of("o1"),
        Some((first.clone(), deadline + day))
    );
    // A deadline already past: kept a day from now.
    schedule(
        &redis,
        &id("late"),
        NOW_MS - MINUTE,
        NOW_MS,
        Some(&duplicate),
    )
    .unwrap();
    assert_eq!(
        redis.kept_trace_of("late"),
        Some((duplicate.clone(), NOW_MS + day))
    );
    // Nothing to keep: nothing written.
    schedule(&redis, &id("none"), NOW_MS - MINUTE, NOW_MS, None).unwrap();
    assert_eq!(redis.kept_trace_of("none"), None);

    assert_eq!(sweep(&redis, &publisher, deadline).unwrap(), 3);
    assert_eq!(expired_orders(&publisher), ["late", "none", "o1"]);
    assert_eq!(
        expiry_traces(&publisher),
        [Some(duplicate.to_string()), None, Some(first.to_string())]
    );
}
