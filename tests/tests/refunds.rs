//! Money is kept only for an order that completes: a payment that succeeds for an order
//! that is, or becomes, cancelled or expired is refunded through Stripe, once, and shown
//! on the order. The races are made to happen on purpose: payments' view of
//! `order:cancelled` is held back (its subscription moved to a channel the test
//! publishes on), or the charge is confirmed in the browser after the cancellation.

use std::time::Duration;

use futures::future::join_all;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tessera_blackbox::marketplace::{
    Deal, Marketplace, Setup, body, envelope, eventually, messages,
};
use tessera_blackbox::stripe::{charged, pay_in_browser, refunds_of};

const DEADLINE: Duration = Duration::from_secs(30);

/// payments' subscription to `order:cancelled`, held back.
const HELD_CANCELLATION: &[(&str, &str)] = &[("payments", "order:cancelled")];

/// The contract's 409 when the cancellation overtook the charge.
const REFUNDING: &str = "The order was cancelled while you paid: your payment will be refunded";

async fn order(m: &Marketplace, buyer: &Client, order_id: &str) -> Value {
    body(m.get(buyer, &format!("/api/orders/{order_id}")).await).await
}

/// The `order:cancelled` orders published for the deal (version 1), as the test hands
/// it to a held-back payments.
fn cancellation(deal: &Deal) -> String {
    envelope(
        "order:cancelled",
        json!({"id": deal.order_id, "version": 1, "ticket": {"id": deal.ticket_id}}),
    )
}

/// The deal's single charge (a PaymentIntent id) of `cents`.
async fn the_charge(m: &Marketplace, cents: u64) -> String {
    let charges = charged(m, cents).await;
    assert_eq!(charges.len(), 1, "one charge of {cents}: {charges:?}");
    charges[0]["id"].as_str().expect("pi id").to_owned()
}

/// Waits until the order shows its payment as `status`, and returns the order.
async fn wait_for_payment(m: &Marketplace, deal: &Deal, status: &str) -> Value {
    eventually(
        &format!("the payment to show as {status}"),
        DEADLINE,
        || async {
            let order = order(m, &deal.buyer, &deal.order_id).await;
            (order["payment"]["status"] == status).then_some(order)
        },
    )
    .await
}

/// The end state the contract promises for a charge `pi` of a cancelled order: refunded
/// in Stripe exactly once, the order cancelled and showing the refund, the ticket free.
async fn assert_refunded_once(m: &Marketplace, deal: &Deal, pi: &str) {
    let order = wait_for_payment(m, deal, "refunded").await;
    assert_eq!(order["status"], "cancelled", "{order}");
    assert_eq!(order["payment"]["stripeId"], pi, "{order}");
    let refunds = refunds_of(m, pi).await;
    assert_eq!(refunds.len(), 1, "refunded exactly once: {refunds:?}");
    // Stripe shows the whole charge refunded.
    let intent = tessera_blackbox::stripe::get(m, &format!("/v1/payment_intents/{pi}")).await;
    assert_eq!(refunds[0]["amount"], intent["amount"]);
    let charge = &intent["latest_charge"];
    let charge_id = charge["id"]
        .as_str()
        .or(charge.as_str())
        .expect("the charge");
    let charge = tessera_blackbox::stripe::get(m, &format!("/v1/charges/{charge_id}")).await;
    assert_eq!(charge["refunded"], true, "{charge}");
    assert_eq!(charge["amount_refunded"], intent["amount"], "{charge}");
    // Free, whichever order tickets saw the order's two events in.
    let ticket_url = format!("/api/tickets/{}", deal.ticket_id);
    eventually("the ticket to be free", DEADLINE, || async {
        let ticket = body(m.get(&Client::new(), &ticket_url).await).await;
        ticket.get("orderId").is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_cancellation_that_reaches_payments_after_the_charge_refunds_it_once() {
    let m = Marketplace::start_setup(Setup {
        held: HELD_CANCELLATION,
        ..Setup::default()
    });
    let deal = m.ordered_ticket(12.5).await;

    // The buyer cancels; orders knows at once, payments does not.
    assert_eq!(
        m.cancel(&deal.buyer, &deal.order_id).await,
        StatusCode::NO_CONTENT
    );
    let (status, paid) = m
        .pay(&deal.buyer, &deal.order_id, Some("pm_card_visa"))
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "payments cannot know yet: {paid}"
    );
    let pi = the_charge(&m, 1250).await;

    // orders hears of the payment and keeps the order cancelled; nothing is refunded
    // while payments has not seen the cancellation.
    let shown = wait_for_payment(&m, &deal, "paid").await;
    assert_eq!(shown["status"], "cancelled", "{shown}");
    assert!(refunds_of(&m, &pi).await.is_empty());

    m.deliver_held("order:cancelled", &cancellation(&deal));
    assert_refunded_once(&m, &deal, &pi).await;

    // The same cancellation again (pub/sub may deliver twice) refunds nothing more.
    m.deliver_held("order:cancelled", &cancellation(&deal));
    let handled = |n| {
        m.app
            .count_log_lines(&["held:order:cancelled", "payments", "ok"])
            >= n
    };
    eventually("payments to handle the duplicate", DEADLINE, || async {
        handled(2).then_some(())
    })
    .await;
    assert_eq!(refunds_of(&m, &pi).await.len(), 1);
    assert_eq!(
        order(&m, &deal.buyer, &deal.order_id).await["payment"]["status"],
        "refunded"
    );
}

#[tokio::test]
async fn a_charge_that_succeeds_after_payments_saw_the_cancellation_is_refunded_once() {
    let m = Marketplace::start();
    let deal = m.ordered_ticket(13.5).await;
    // The browser holds a PaymentIntent for the order...
    let (status, started) = m.pay(&deal.buyer, &deal.order_id, None).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let pi = started["stripeId"].as_str().expect("stripeId").to_owned();

    // ...the buyer cancels in another tab, and payments learns of it...
    assert_eq!(
        m.cancel(&deal.buyer, &deal.order_id).await,
        StatusCode::NO_CONTENT
    );
    eventually(
        "payments to refuse the cancelled order",
        DEADLINE,
        || async {
            let (status, errors) = m.pay(&deal.buyer, &deal.order_id, None).await;
            (status == StatusCode::BAD_REQUEST).then_some(messages(&errors))
        },
    )
    .await;

    // ...then the card is charged in the browser, and the follow-up call comes in.
    let confirmed = pay_in_browser(&m, &pi).await;
    assert_eq!(confirmed["status"], "succeeded", "{confirmed}");
    let resp = m
        .post(
            &deal.buyer,
            "/api/payments/confirm",
            json!({"orderId": deal.order_id}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    assert_eq!(messages(&body(resp).await), [REFUNDING]);

    assert_refunded_once(&m, &deal, &pi).await;
}

#[tokio::test]
async fn a_visibly_cancelled_order_is_refused_before_any_charge() {
    let m = Marketplace::start();
    let deal = m.ordered_ticket(14.5).await;
    assert_eq!(
        m.cancel(&deal.buyer, &deal.order_id).await,
        StatusCode::NO_CONTENT
    );
    let refusal = eventually("payments to see the cancellation", DEADLINE, || async {
        let (status, errors) = m
            .pay(&deal.buyer, &deal.order_id, Some("pm_card_visa"))
            .await;
        (status != StatusCode::NOT_FOUND).then_some((status, errors))
    })
    .await;
    // Either payments saw it and refused (the usual case), or the charge raced the
    // event and went back (201, or 409 when the cancellation arrived during the charge);
    // never a kept charge.
    match refusal {
        (StatusCode::BAD_REQUEST, errors) => {
            assert_eq!(messages(&errors), ["Cannot pay for an cancelled order"]);
            assert!(charged(&m, 1450).await.is_empty(), "no 201 then a refund");
        }
        (status, body) => {
            assert!(
                status == StatusCode::CREATED || status == StatusCode::CONFLICT,
                "{status} {body}"
            );
            let pi = the_charge(&m, 1450).await;
            assert_refunded_once(&m, &deal, &pi).await;
        }
    }
}

#[tokio::test]
async fn a_refund_due_while_stripe_is_down_is_made_once_it_is_back() {
    let m = Marketplace::start_setup(Setup {
        held: HELD_CANCELLATION,
        stripe_switch: true,
        ..Setup::default()
    });
    let deal = m.ordered_ticket(15.5).await;
    assert_eq!(
        m.cancel(&deal.buyer, &deal.order_id).await,
        StatusCode::NO_CONTENT
    );
    let (status, paid) = m
        .pay(&deal.buyer, &deal.order_id, Some("pm_card_visa"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    let pi = the_charge(&m, 1550).await;

    m.set_stripe_up(false);
    m.deliver_held("order:cancelled", &cancellation(&deal));
    let failed = format!("refund of {pi}");
    eventually("a refund attempt that fails", DEADLINE, || async {
        (m.app.count_log_lines(&[&failed, "failed"]) >= 1).then_some(())
    })
    .await;
    assert!(refunds_of(&m, &pi).await.is_empty());
    assert_eq!(
        wait_for_payment(&m, &deal, "paid").await["status"],
        "cancelled"
    );

    // Nothing else happens in the app from here on but polls of orders: the retry is
    // payments' own (its wake-up key's expiry), and it refunds once.
    m.set_stripe_up(true);
    assert_refunded_once(&m, &deal, &pi).await;
}

/// One deal per price, created concurrently.
async fn deals(m: &Marketplace, prices: &[f64]) -> Vec<Deal> {
    join_all(prices.iter().map(|price| m.ordered_ticket(*price))).await
}

/// A deal's end state once settled: `Some(true)` complete with its one charge kept,
/// `Some(false)` cancelled with every charge refunded once (or none made); `None`
/// while it is still moving.
async fn settled(m: &Marketplace, deal: &Deal, cents: u64) -> Option<bool> {
    let order = order(m, &deal.buyer, &deal.order_id).await;
    let charges = charged(m, cents).await;
    let mut refunded = 0;
    for charge in &charges {
        refunded += refunds_of(m, charge["id"].as_str()?).await.len();
    }
    match (order["status"].as_str()?, charges.len()) {
        ("complete", 1) if refunded == 0 && order["payment"]["status"] == "paid" => Some(true),
        ("cancelled", 0) if order["payment"].is_null() => Some(false),
        ("cancelled", n) if refunded == n && order["payment"]["status"] == "refunded" => {
            Some(false)
        }
        _ => None,
    }
}

/// Waits for every deal to settle; how many ended complete (money kept).
async fn settle_all(m: &Marketplace, deals: &[Deal], prices: &[f64]) -> usize {
    let mut complete = 0;
    for (deal, price) in deals.iter().zip(prices) {
        let cents = (price * 100.0).round() as u64;
        let kept = eventually(
            &format!(
                "order {} ({cents}) to settle as complete-and-kept or cancelled-and-refunded",
                deal.order_id
            ),
            DEADLINE,
            || settled(m, deal, cents),
        )
        .await;
        complete += usize::from(kept);
    }
    complete
}

#[tokio::test]
async fn paying_at_the_lock_boundary_is_kept_or_refunded_never_in_between() {
    let m = Marketplace::start_with(&[("SPIN_VARIABLE_ORDER_LOCK_SECONDS", "4")]);
    // Payments aimed around each order's deadline, from just before to just after.
    let offsets_ms: [i64; 10] = [-150, -100, -50, -20, 0, 20, 50, 100, 200, 400];
    let prices: Vec<f64> = (1..=offsets_ms.len())
        .map(|i| 20.0 + i as f64 / 100.0)
        .collect();
    let deals = deals(&m, &prices).await;

    let m = &m;
    join_all(
        deals
            .iter()
            .zip(offsets_ms)
            .map(|(deal, offset)| async move {
                let order = order(m, &deal.buyer, &deal.order_id).await;
                let deadline = parse_deadline_ms(order["expiresAt"].as_str().expect("expiresAt"));
                let at = deadline.saturating_add_signed(offset);
                // Scheduling the request at a moment, not waiting for an event.
                tokio::time::sleep(Duration::from_millis(at.saturating_sub(now_ms()))).await;
                m.pay(&deal.buyer, &deal.order_id, Some("pm_card_visa"))
                    .await
            }),
    )
    .await;

    let complete = settle_all(m, &deals, &prices).await;
    println!(
        "{complete} of {} paid at the boundary kept their payment",
        deals.len()
    );
}

#[tokio::test]
async fn twenty_concurrent_cancel_and_pay_pairs_keep_money_only_for_complete_orders() {
    let m = Marketplace::start();
    let prices: Vec<f64> = (1..=20).map(|i| 30.0 + i as f64 / 100.0).collect();
    let deals = deals(&m, &prices).await;

    join_all(deals.iter().map(|deal| async {
        let (cancelled, paid) = tokio::join!(
            m.cancel(&deal.buyer, &deal.order_id),
            m.pay(&deal.buyer, &deal.order_id, Some("pm_card_visa"))
        );
        assert!(
            [StatusCode::NO_CONTENT, StatusCode::BAD_REQUEST].contains(&cancelled),
            "cancel: {cancelled}"
        );
        assert!(!paid.0.is_server_error(), "pay: {paid:?}");
    }))
    .await;

    let complete = settle_all(&m, &deals, &prices).await;
    let mut kept = 0;
    for price in &prices {
        let cents = (price * 100.0).round() as u64;
        for charge in charged(&m, cents).await {
            if refunds_of(&m, charge["id"].as_str().unwrap())
                .await
                .is_empty()
            {
                kept += 1;
            }
        }
    }
    assert_eq!(kept, complete, "kept charges = complete orders");
    println!("{complete} of 20 cancel+pay pairs ended paid");
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `2026-11-24T10:03:00Z` as Unix milliseconds.
fn parse_deadline_ms(rfc3339: &str) -> u64 {
    common::time::parse_rfc3339(rfc3339).expect("an RFC 3339 deadline") * 1_000
}
