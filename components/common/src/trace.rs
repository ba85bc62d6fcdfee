//! W3C Trace Context for events: which request or message caused an event.
//!
//! The Tessera host starts a span for every HTTP request and every Redis message, and
//! hands the guest that span's context as a W3C `traceparent`: the request header
//! `traceparent`, or the top-level `traceparent` of the message's envelope (rewritten to
//! the consumer span). An entry point makes it the instance's [current](current)
//! context ([`crate::http::serve`], [`crate::message::serve`]), and
//! [`crate::outbox::enqueue`] copies that into every event it queues (the CloudEvents
//! Distributed Tracing extension, `wit/README.md`), so the consumers of the event
//! continue the same trace. Work that is not caused by the request or message at hand
//! (a backstop) runs [`without`] one.
//!
//! With tracing off (or under Spin), the header is whatever the caller sent, if anything,
//! and messages carry whatever their publisher put there; nothing here depends on
//! tracing being on.

use std::cell::RefCell;
use std::fmt;

use serde_json::{Map, Value};

/// The length of a version `00` traceparent: `00-` + 32 + `-` + 16 + `-` + 2.
pub const LEN: usize = 55;

/// The only traceparent version understood (and written).
pub const VERSION: &str = "00";

/// The name of the HTTP header and of the envelope attribute.
pub const ATTRIBUTE: &str = "traceparent";

/// A valid W3C `traceparent` of version `00`:
/// `00-<trace id: 32 hex>-<parent id: 16 hex>-<flags: 2 hex>`, lowercase, neither id
/// all zeros. Nothing else can be held, so a value taken from a request or a message
/// can be copied into events as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TraceParent(String);

impl TraceParent {
    /// `text` as a traceparent, or `None` for anything that is not a valid version
    /// `00` one (another version, uppercase hex, an all-zero id, the wrong length).
    pub fn parse(text: &str) -> Option<Self> {
        // The length first, so a huge string costs nothing more.
        if text.len() != LEN {
            return None;
        }
        let mut parts = text.split('-');
        let (Some(version), Some(trace_id), Some(parent_id), Some(flags), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let valid = version == VERSION
            && is_hex(trace_id, 32)
            && is_hex(parent_id, 16)
            && is_hex(flags, 2)
            && !is_zero(trace_id)
            && !is_zero(parent_id);
        valid.then(|| Self(text.to_owned()))
    }

    /// The traceparent as sent: 55 characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Exactly `len` lowercase hex digits.
fn is_hex(part: &str, len: usize) -> bool {
    part.len() == len
        && part
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_zero(part: &str) -> bool {
    part.bytes().all(|b| b == b'0')
}

/// The traceparent of a Redis message: the top-level string `traceparent` of a JSON
/// object, if valid. Anything else (a keyspace notification's bare key name, garbage,
/// an envelope without one or with an invalid one) has none.
pub fn of_message(payload: &[u8]) -> Option<TraceParent> {
    // Only an object (a struct would also accept a JSON array).
    let object: Map<String, Value> = serde_json::from_slice(payload).ok()?;
    TraceParent::parse(object.get(ATTRIBUTE)?.as_str()?)
}

thread_local! {
    /// The trace context of the request or message being handled. A thread-local is
    /// enough: a component instance serves one request or message, and wasm is
    /// single-threaded, so this is per instance (and per test thread, natively).
    static CURRENT: RefCell<Option<TraceParent>> = const { RefCell::new(None) };
}

/// Makes `traceparent` the current context (an entry point does, before its work).
pub fn set_current(traceparent: Option<TraceParent>) {
    CURRENT.with(|current| current.replace(traceparent));
}

/// The current context: what events queued now carry.
pub fn current() -> Option<TraceParent> {
    CURRENT.with(|current| current.borrow().clone())
}

/// Runs `work` with `traceparent` as the current context, then restores the previous
/// one (even if `work` panics).
pub fn with_current<T>(traceparent: Option<TraceParent>, work: impl FnOnce() -> T) -> T {
    /// Puts the previous context back when dropped.
    struct Restore(Option<TraceParent>);

    impl Drop for Restore {
        fn drop(&mut self) {
            set_current(self.0.take());
        }
    }

    let _restore = Restore(CURRENT.with(|current| current.replace(traceparent)));
    work()
}

/// Runs `work` with no current context (its events carry no traceparent), then
/// restores the previous one: for work the request or message at hand did not cause.
pub fn without<T>(work: impl FnOnce() -> T) -> T {
    with_current(None, work)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn traceparent(text: &str) -> TraceParent {
        TraceParent::parse(text).unwrap_or_else(|| panic!("{text:?} is valid"))
    }

    #[test]
    fn valid_traceparents_are_kept_as_they_are() {
        for text in [
            VALID,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            "00-00000000000000000000000000000001-0000000000000001-ff",
        ] {
            let parsed = traceparent(text);
            assert_eq!(parsed.as_str(), text);
            assert_eq!(parsed.to_string(), text);
        }
        assert_eq!(VALID.len(), LEN);
    }

    #[test]
    fn anything_else_is_refused() {
        let huge = format!("{VALID}{}", "0".repeat(1 << 20));
        for text in [
            "",
            "garbage",
            "00-abc",
            // Uppercase hex.
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
            // Other versions, the forbidden one included.
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // All-zero ids.
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            // Wrong lengths, a version 01 with a suffix, parts shifted.
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-ab",
            // Other separators, non-hex, non-ASCII of the right byte length.
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7+01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01",
            " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            huge.as_str(),
        ] {
            assert_eq!(TraceParent::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn a_message_carries_its_envelope_traceparent() {
        let message = format!(r#"{{"specversion":"1.0","traceparent":"{VALID}","data":{{}}}}"#);
        assert_eq!(of_message(message.as_bytes()), Some(traceparent(VALID)));

        let nested = format!(r#"{{"data":{{"traceparent":"{VALID}"}}}}"#);
        let as_array = format!(r#"["{VALID}"]"#);
        let wrong_case = VALID.to_uppercase();
        for payload in [
            "expiration:order:o1".to_owned(),
            "".to_owned(),
            "not json".to_owned(),
            "{}".to_owned(),
            r#"{"traceparent":null}"#.to_owned(),
            r#"{"traceparent":55}"#.to_owned(),
            format!(r#"{{"traceparent":"{wrong_case}"}}"#),
            r#"{"traceparent":"00-abc"}"#.to_owned(),
            nested,
            as_array,
        ] {
            assert_eq!(of_message(payload.as_bytes()), None, "{payload}");
        }
        assert_eq!(of_message(b"\xff\xfe"), None);
    }

    #[test]
    fn the_current_context_is_set_and_scoped() {
        let outer = traceparent(VALID);
        let inner = traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
        assert_eq!(current(), None);
        set_current(Some(outer.clone()));
        assert_eq!(current(), Some(outer.clone()));

        assert_eq!(without(current), None);
        assert_eq!(with_current(Some(inner.clone()), current), Some(inner));
        assert_eq!(current(), Some(outer.clone()), "restored");

        // Restored even when the work panics.
        let panicked = std::panic::catch_unwind(|| without(|| panic!("work failed")));
        assert!(panicked.is_err());
        assert_eq!(current(), Some(outer));

        set_current(None);
        assert_eq!(current(), None);
    }
}
