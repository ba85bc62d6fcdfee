use std::cell::RefCell;
use std::collections::VecDeque;

use super::*;
use crate::testing::{NOW_MS, id};

/// A connection that records each command line and answers from a script.
#[derive(Default)]
struct Scripted {
    commands: RefCell<Vec<String>>,
    replies: RefCell<VecDeque<anyhow::Result<Vec<RedisResult>>>>,
}

impl Scripted {
    fn answering(replies: impl IntoIterator<Item = Vec<RedisResult>>) -> RedisDeadlines<Self> {
        let scripted = Self::default();
        scripted
            .replies
            .borrow_mut()
            .extend(replies.into_iter().map(Ok));
        RedisDeadlines::new(scripted)
    }

    fn failing() -> RedisDeadlines<Self> {
        let scripted = Self::default();
        scripted
            .replies
            .borrow_mut()
            .push_back(Err(anyhow!("Other(\"connection refused\")")));
        RedisDeadlines::new(scripted)
    }
}

impl Execute for Scripted {
    fn execute(
        &self,
        command: &str,
        arguments: &[RedisParameter],
    ) -> anyhow::Result<Vec<RedisResult>> {
        let mut line = command.to_owned();
        for argument in arguments {
            line.push(' ');
            match argument {
                RedisParameter::Int64(n) => line.push_str(&n.to_string()),
                RedisParameter::Binary(bytes) => line.push_str(&String::from_utf8_lossy(bytes)),
            }
        }
        self.commands.borrow_mut().push(line);
        self.replies
            .borrow_mut()
            .pop_front()
            .expect("a scripted reply")
    }
}

fn commands(redis: &RedisDeadlines<Scripted>) -> Vec<String> {
    redis.connection.commands.borrow().clone()
}

fn int(n: i64) -> Vec<RedisResult> {
    vec![RedisResult::Int64(n)]
}

fn status_ok() -> Vec<RedisResult> {
    vec![RedisResult::Status("OK".into())]
}

fn bulk(text: &str) -> RedisResult {
    RedisResult::Binary(text.as_bytes().to_vec())
}

#[test]
fn each_operation_is_one_command() {
    let redis = Scripted::answering([
        int(0),
        int(1),
        status_ok(),
        vec![],
        int(1),
        status_ok(),
        vec![RedisResult::Nil],
        int(1),
    ]);
    let order = id("o1");
    assert!(!redis.is_done(&order).unwrap());
    redis.add(&order, NOW_MS).unwrap();
    redis.arm_timer(&order, NOW_MS).unwrap();
    assert_eq!(redis.due(NOW_MS, 100).unwrap(), vec![]);
    assert!(redis.claim(&order).unwrap());
    assert!(redis.mark_done(&order).unwrap());
    assert!(!redis.mark_done(&order).unwrap(), "NX: already done");
    redis.unmark_done(&order).unwrap();
    assert_eq!(
        commands(&redis),
        [
            "EXISTS expiration:done:o1",
            "ZADD expiration:due 1795514580000 o1",
            "SET expiration:order:o1 o1 PXAT 1795514580000",
            "ZRANGEBYSCORE expiration:due -inf 1795514580000 WITHSCORES LIMIT 0 100",
            "ZREM expiration:due o1",
            "SET expiration:done:o1 1 NX EX 86400",
            "SET expiration:done:o1 1 NX EX 86400",
            "DEL expiration:done:o1",
        ]
    );
}

#[test]
fn integer_replies_are_read() {
    let redis = Scripted::answering([int(1), int(0), int(1), int(0)]);
    assert!(redis.is_done(&id("o1")).unwrap());
    assert!(!redis.is_done(&id("o1")).unwrap());
    assert!(redis.claim(&id("o1")).unwrap());
    assert!(!redis.claim(&id("o1")).unwrap());
}

#[test]
fn due_entries_come_in_member_score_pairs() {
    let redis = Scripted::answering([vec![
        bulk("a"),
        bulk("1795514580000"),
        // Redis may format a score in exponent notation; RESP3 may send a number.
        bulk("b"),
        bulk("1.795514581e+12"),
        bulk("c"),
        RedisResult::Int64(1_795_514_582_000),
        // Nothing of ours writes such a member: skipped, not fatal.
        bulk("not an id"),
        bulk("1"),
        bulk("d"),
        bulk("-5"),
    ]]);
    let due: Vec<(String, u64)> = redis
        .due(NOW_MS, 100)
        .unwrap()
        .into_iter()
        .map(|due| (due.order.to_string(), due.deadline_ms))
        .collect();
    assert_eq!(
        due,
        [
            ("a".to_owned(), 1_795_514_580_000),
            ("b".to_owned(), 1_795_514_581_000),
            ("c".to_owned(), 1_795_514_582_000),
            ("d".to_owned(), 0),
        ]
    );
}

#[test]
fn unexpected_replies_are_errors() {
    let order = id("o1");
    let redis = Scripted::answering([vec![RedisResult::Nil]]);
    assert!(redis.arm_timer(&order, NOW_MS).is_err());
    let redis = Scripted::answering([status_ok()]);
    assert!(redis.claim(&order).is_err());
    let redis = Scripted::answering([vec![]]);
    assert!(redis.is_done(&order).is_err());
    let redis = Scripted::answering([int(1)]);
    assert!(redis.mark_done(&order).is_err());
    for reply in [
        vec![bulk("a")],
        vec![bulk("a"), bulk("soon")],
        vec![bulk("a"), bulk("nan")],
        vec![RedisResult::Int64(1), bulk("1")],
    ] {
        let redis = Scripted::answering([reply.clone()]);
        assert!(redis.due(NOW_MS, 100).is_err(), "{reply:?}");
    }
}

#[test]
fn connection_errors_name_the_command() {
    let redis = Scripted::failing();
    let err = redis.claim(&id("o1")).unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("Redis ZREM failed"), "{message}");
    assert!(message.contains("connection refused"), "{message}");
}

#[test]
fn the_trace_context_is_kept_once_and_read_back() {
    let traceparent = common::testing::traceparent(1);
    let redis = Scripted::answering([
        status_ok(),
        vec![RedisResult::Nil],
        vec![bulk(traceparent.as_str())],
        vec![RedisResult::Nil],
        vec![],
        // Nothing of ours writes anything else there: no trace context.
        vec![bulk("00-abc")],
    ]);
    let order = id("o1");
    redis.keep_trace(&order, &traceparent, NOW_MS).unwrap();
    redis.keep_trace(&order, &traceparent, NOW_MS).unwrap();
    assert_eq!(redis.kept_trace(&order).unwrap(), Some(traceparent.clone()));
    assert_eq!(redis.kept_trace(&order).unwrap(), None);
    assert_eq!(redis.kept_trace(&order).unwrap(), None);
    assert_eq!(redis.kept_trace(&order).unwrap(), None);
    let set = format!("SET expiration:trace:o1 {traceparent} NX PXAT 1795514580000");
    assert_eq!(
        commands(&redis),
        [
            set.as_str(),
            set.as_str(),
            "GET expiration:trace:o1",
            "GET expiration:trace:o1",
            "GET expiration:trace:o1",
            "GET expiration:trace:o1",
        ]
    );

    let redis = Scripted::answering([int(1), int(1)]);
    assert!(redis.keep_trace(&order, &traceparent, NOW_MS).is_err());
    assert!(redis.kept_trace(&order).is_err());
}
