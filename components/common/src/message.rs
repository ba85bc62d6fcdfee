//! The Redis entry point shared by every service: [`serve`] (or [`serve_async`]) is
//! the body of every `#[redis_component]`, as [`crate::http::serve`] is of every
//! `#[http_component]`.
//!
//! It makes the message's envelope `traceparent` the current trace context (so the
//! events the message causes continue its trace; see [`crate::trace`]), runs the
//! service's handler, and folds an error's context chain into its message: the host
//! logs only that message.

use std::future::Future;

use crate::trace;

/// Handles one Redis message `payload` with `handle`: sets the current trace context
/// from the payload ([`trace::of_message`]: none unless it is a JSON object with a
/// valid top-level `traceparent`), runs `handle`, and folds the error chain.
pub fn serve<T>(payload: &[u8], handle: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    trace::set_current(trace::of_message(payload));
    handle().map_err(fold_chain)
}

/// [`serve`] for an async handler (payments, whose handlers call Stripe).
pub async fn serve_async<T>(
    payload: &[u8],
    handle: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    // A future does nothing until awaited, so the context is set before any of it runs.
    trace::set_current(trace::of_message(payload));
    handle.await.map_err(fold_chain)
}

/// `err` with its context chain folded into one message (`{:#}`).
fn fold_chain(err: anyhow::Error) -> anyhow::Error {
    anyhow::anyhow!("{err:#}")
}

#[cfg(test)]
mod tests {
    use anyhow::Context;
    use futures::executor::block_on;

    use super::*;
    use crate::trace::TraceParent;

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn envelope(traceparent: &str) -> Vec<u8> {
        format!(
            r#"{{"specversion":"1.0","id":"i","type":"expiration:complete","source":"/s","traceparent":"{traceparent}","data":{{"order_id":"o1"}}}}"#
        )
        .into_bytes()
    }

    fn failing() -> anyhow::Result<()> {
        Err(anyhow::anyhow!("connection refused")).context("Failed to open Redis")
    }

    #[test]
    fn the_handler_runs_in_the_messages_trace() {
        let message = envelope(TRACEPARENT);
        let seen = serve(&message, || Ok(trace::current())).unwrap();
        assert_eq!(seen, TraceParent::parse(TRACEPARENT));
        let seen = block_on(serve_async(&message, async { Ok(trace::current()) })).unwrap();
        assert_eq!(seen, TraceParent::parse(TRACEPARENT));
    }

    #[test]
    fn a_message_without_a_valid_traceparent_has_no_context() {
        // Left over from an earlier message on this thread: replaced, not kept.
        trace::set_current(TraceParent::parse(TRACEPARENT));
        for message in [
            envelope("00-abc"),
            envelope(&TRACEPARENT.to_uppercase()),
            br#"{"specversion":"1.0","data":{}}"#.to_vec(),
            b"expiration:order:o1".to_vec(),
        ] {
            assert_eq!(serve(&message, || Ok(trace::current())).unwrap(), None);
            trace::set_current(TraceParent::parse(TRACEPARENT));
            let seen = block_on(serve_async(&message, async { Ok(trace::current()) }));
            assert_eq!(seen.unwrap(), None);
        }
    }

    #[test]
    fn errors_carry_their_context_chain_in_the_message() {
        for err in [
            serve(b"x", failing).unwrap_err(),
            block_on(serve_async(b"x", async { failing() })).unwrap_err(),
        ] {
            assert_eq!(err.to_string(), "Failed to open Redis: connection refused");
            assert_eq!(err.chain().count(), 1);
        }
        assert_eq!(serve(b"x", || Ok(3)).unwrap(), 3);
    }
}
