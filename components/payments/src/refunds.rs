//! Making the refunds the store queued (see `domain::refund` for the rule).
//!
//! Every request and message payments handles ends with [`make_due`], like the outbox
//! relay: a refund queued by that very request (a payment that arrived after its
//! order's cancellation) is made before the answer, and one queued by a Redis message
//! (the cancellation that arrived after the payment) before the message is done.
//!
//! Each `payment:refunded` carries the trace context the refund was queued with (the
//! cancellation or payment that called for it), whichever run of the worker makes it.
//!
//! A try that fails (Stripe unreachable, 5xx, or a refusal) is logged and retried after a
//! back-off (`domain::refund::retry_delay`). So that the retry does not wait for the next
//! unrelated activity, [`make_due`] returns when the next one is due and the Spin glue
//! sets a Redis key ([`WAKE_KEY`]) to expire then: its keyspace notification on
//! `__keyevent@0__:expired` is a message like any other, which runs [`make_due`] again.

use common::sqlite::Database;

use crate::domain::Refund;
use crate::store::Payments;
use crate::stripe::{NewRefund, Stripe, StripeError};

/// The Redis key whose expiry wakes payments when a refund retry is due.
pub const WAKE_KEY: &str = "tessera:payments:refunds-due";

/// Tries every refund due at `now` once. Returns when the next still-unmade refund
/// is due (Unix seconds), if any. Errors are the store's only: Stripe failures
/// postpone the refund.
pub async fn make_due<D: Database, S: Stripe>(
    payments: &Payments<D>,
    stripe: &S,
    now: u64,
) -> anyhow::Result<Option<u64>> {
    for refund in payments.claim_due_refunds(now)? {
        match stripe.create_refund(&request(&refund)).await {
            Ok(made) => {
                if payments.refund_made(&refund, &made.id, now)? {
                    eprintln!(
                        "payments: refunded {} of order {} ({}) as {}",
                        refund.stripe_id,
                        refund.order_id,
                        refund.reason.as_str(),
                        made.id
                    );
                }
            }
            Err(err) => {
                let level = match err {
                    StripeError::Unavailable(_) | StripeError::InProgress => "will retry",
                    _ => "will retry; this needs a look",
                };
                eprintln!(
                    "payments: refund of {} (order {}) failed: {err}; {level}",
                    refund.stripe_id, refund.order_id
                );
                payments.postpone_refund(&refund, now)?;
            }
        }
    }
    payments.next_refund_due()
}

fn request(refund: &Refund) -> NewRefund {
    NewRefund {
        payment_intent: refund.stripe_id.clone(),
        order_id: refund.order_id.to_string(),
        idempotency_key: refund.idempotency_key(),
    }
}

/// Whether a Redis message is a keyspace notification (a bare key name, e.g. the
/// expiry of [`WAKE_KEY`] or of another service's timer) rather than an event: nothing
/// to decode, the refunds worker runs after every message anyway.
pub fn is_key_name(payload: &[u8]) -> bool {
    !payload.is_empty()
        && payload.len() <= 512
        && payload.iter().all(|b| b.is_ascii_graphic())
        && payload[0] != b'{'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Payment;
    use crate::store::Recorded;
    use crate::testing::*;
    use common::events::{Event, OrderStatus, PaymentRefunded};

    /// A charge of a cancelled order, queued for its refund.
    fn queued(store: &TestStore) -> Payment {
        put_order(store, ORDER, "buyer", 1099);
        set_status(store, ORDER, 1, OrderStatus::Cancelled);
        let payment = Payment::new(order_id(ORDER), "pi_fake1");
        assert!(matches!(
            store.record(&payment, NOW).unwrap(),
            Recorded::Refunding(_)
        ));
        payment
    }

    fn refunded_events(store: &TestStore) -> Vec<PaymentRefunded> {
        outbox(store)
            .into_iter()
            .filter_map(|event| match event {
                Event::PaymentRefunded(refunded) => Some(refunded),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_due_refund_is_made_once_and_announced() {
        let deps = deps();
        let payment = queued(&deps.payments);

        let next = run(make_due(&deps.payments, &deps.stripe, NOW)).unwrap();
        assert_eq!(next, None, "nothing left to refund");
        assert_eq!(deps.stripe.refunds(), ["pi_fake1"]);
        assert_eq!(
            deps.stripe.refund_keys(),
            ["refund-pi_fake1"],
            "the key is derived from the charge"
        );
        assert_eq!(
            refunded_events(&deps.payments),
            [PaymentRefunded {
                id: payment.id.clone(),
                order_id: ORDER.into(),
                stripe_id: "pi_fake1".into(),
                refund_id: "re_fake1".into(),
            }]
        );

        // Later runs, and the same charge queued again, change nothing.
        set_status(&deps.payments, ORDER, 2, OrderStatus::Cancelled);
        run(make_due(&deps.payments, &deps.stripe, NOW + 1_000)).unwrap();
        assert_eq!(deps.stripe.refunds(), ["pi_fake1"]);
        assert_eq!(refunded_events(&deps.payments).len(), 1);
    }

    #[test]
    fn the_refund_event_carries_the_trace_of_what_queued_it() {
        use common::outbox::testing::pending_traceparents;
        use common::testing::traceparent;
        use common::trace;

        let (cause, other) = (traceparent(1), traceparent(2));
        for queued_in in [Some(cause), None] {
            let deps = deps();
            trace::with_current(queued_in.clone(), || queued(&deps.payments));
            // Tried in the context of other requests: first Stripe is down, then the
            // retry is made.
            deps.stripe.go_down();
            let first = trace::with_current(Some(other.clone()), || {
                run(make_due(&deps.payments, &deps.stripe, NOW))
            });
            assert_eq!(first.unwrap(), Some(NOW + 2));
            deps.stripe.come_back();
            let retry = trace::with_current(Some(other.clone()), || {
                run(make_due(&deps.payments, &deps.stripe, NOW + 2))
            });
            assert_eq!(retry.unwrap(), None);

            let events = outbox(&deps.payments);
            let traceparents = pending_traceparents(deps.payments.db()).unwrap();
            let refunded: Vec<_> = events
                .iter()
                .zip(traceparents)
                .filter(|(event, _)| matches!(event, Event::PaymentRefunded(_)))
                .map(|(_, traceparent)| traceparent)
                .collect();
            let expected = queued_in.as_ref().map(ToString::to_string);
            assert_eq!(refunded, [expected], "queued in {queued_in:?}");
        }
    }

    #[test]
    fn stripe_down_postpones_with_back_off_until_it_is_back() {
        let deps = deps();
        queued(&deps.payments);
        deps.stripe.go_down();

        let next = run(make_due(&deps.payments, &deps.stripe, NOW)).unwrap();
        assert_eq!(next, Some(NOW + 2));
        assert!(refunded_events(&deps.payments).is_empty());
        // Not due yet: not even tried.
        let tries = deps.stripe.calls().len();
        assert_eq!(
            run(make_due(&deps.payments, &deps.stripe, NOW + 1)).unwrap(),
            Some(NOW + 2)
        );
        assert_eq!(deps.stripe.calls().len(), tries);
        // Due and failing again: the wait doubles.
        assert_eq!(
            run(make_due(&deps.payments, &deps.stripe, NOW + 2)).unwrap(),
            Some(NOW + 6)
        );

        deps.stripe.come_back();
        assert_eq!(
            run(make_due(&deps.payments, &deps.stripe, NOW + 6)).unwrap(),
            None
        );
        assert_eq!(deps.stripe.refunds(), ["pi_fake1"]);
        assert_eq!(refunded_events(&deps.payments).len(), 1);
    }

    #[test]
    fn a_refund_in_flight_is_left_to_its_instance() {
        let deps = deps();
        queued(&deps.payments);
        let claimed = deps.payments.claim_due_refunds(NOW).unwrap();
        assert_eq!(claimed.len(), 1);
        // Another instance finds nothing to do until the lease ends.
        assert!(deps.payments.claim_due_refunds(NOW + 1).unwrap().is_empty());
        run(make_due(&deps.payments, &deps.stripe, NOW + 1)).unwrap();
        assert!(deps.stripe.refunds().is_empty());
        let lease = crate::store::REFUND_LEASE_SECONDS;
        assert_eq!(
            deps.payments.claim_due_refunds(NOW + lease).unwrap().len(),
            1
        );
    }

    #[test]
    fn store_failures_are_errors_and_leave_the_refund_queued() {
        let deps = deps();
        queued(&deps.payments);
        deps.payments
            .db()
            .fail_statements_containing("SET refund_id");
        assert!(run(make_due(&deps.payments, &deps.stripe, NOW)).is_err());
        assert_eq!(
            deps.payments.refund_of("pi_fake1").unwrap(),
            Some(None),
            "still to make"
        );
    }

    #[test]
    fn key_names_are_not_events() {
        assert!(is_key_name(WAKE_KEY.as_bytes()));
        assert!(is_key_name(b"expiration:deadline:abc"));
        for payload in [&b""[..], b"{}", b"not json", b"\x00\x01", br#"{"a":1}"#] {
            assert!(!is_key_name(payload), "{payload:?}");
        }
    }
}
