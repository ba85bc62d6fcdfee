//! One trace follows an order across every service: the marketplace under the real
//! `tessera up`, exporting OpenTelemetry spans to a real OTLP receiver.
//!
//! The caller sends its own `traceparent` with `POST /api/orders`; everything that order
//! causes, through the outbox and Redis, must land in that trace with correct parent
//! links: `order:created` in every consumer, the ticket's reservation, the expiry three
//! hops later, the cancellation and the ticket's release. Paid, the same trace holds the
//! call to Stripe, `payment:created` and the order's completion.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tessera_blackbox::marketplace::{Marketplace, body};
use tessera_blackbox::otlp::{OtlpReceiver, ReceivedSpan, describe};

const DEADLINE: Duration = Duration::from_secs(30);

/// The caller's context: trace `4bf9…4736`, span `00f0…02b7`.
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// Who consumes each channel (wit/README.md's table).
const CONSUMERS: &[(&str, &[&str])] = &[
    (
        "order:created",
        &["tickets", "payments", "expiration", "activity", "search"],
    ),
    ("ticket:updated", &["orders", "activity", "search"]),
    ("expiration:complete", &["orders", "activity"]),
    (
        "order:cancelled",
        &["tickets", "payments", "activity", "search"],
    ),
    ("payment:created", &["orders", "activity"]),
    ("order:completed", &["payments", "activity", "search"]),
];

fn consumers_of(channel: &str) -> &'static [&'static str] {
    CONSUMERS
        .iter()
        .find(|(c, _)| *c == channel)
        .map(|(_, consumers)| *consumers)
        .unwrap_or_default()
}

/// `component`'s consumer span for `channel` whose parent is `parent`.
fn consumer<'a>(
    spans: &'a [ReceivedSpan],
    component: &str,
    channel: &str,
    parent: &str,
) -> Result<&'a ReceivedSpan, String> {
    spans
        .iter()
        .find(|s| {
            s.kind == "CONSUMER"
                && s.attribute("spin.component.id") == Some(component)
                && s.attribute("messaging.destination.name") == Some(channel)
                && s.parent_span_id.as_deref() == Some(parent)
        })
        .ok_or_else(|| format!("no `{component}` span for `{channel}` under span {parent}"))
}

/// Every consumer of `channel`, each a child of `parent`; the one of `next` (if any).
fn hop<'a>(
    spans: &'a [ReceivedSpan],
    channel: &str,
    parent: &str,
    next: &str,
) -> Result<&'a ReceivedSpan, String> {
    let mut found = None;
    for component in consumers_of(channel) {
        let span = consumer(spans, component, channel, parent)?;
        if *component == next {
            found = Some(span);
        }
    }
    found.ok_or_else(|| format!("`{next}` does not consume `{channel}`"))
}

/// The spans of the order's trace, once the whole journey is there.
struct Journey<'a> {
    order_post: &'a ReceivedSpan,
}

fn journey(spans: &[ReceivedSpan]) -> Result<Journey<'_>, String> {
    let order_post = spans
        .iter()
        .find(|s| s.kind == "SERVER" && s.parent_span_id.as_deref() == Some(CALLER_SPAN))
        .ok_or("no server span for the order POST")?;
    let post = order_post.span_id.as_str();
    // order:created → every consumer; tickets reserves the ticket (ticket:updated).
    let tickets_reserving = hop(spans, "order:created", post, "tickets")?;
    hop(
        spans,
        "ticket:updated",
        &tickets_reserving.span_id,
        "orders",
    )?;
    // expiration schedules it; its expiry, seconds later, continues from there.
    let expiration = hop(spans, "order:created", post, "expiration")?;
    let orders_expiring = hop(spans, "expiration:complete", &expiration.span_id, "orders")?;
    // orders cancels the unpaid order; tickets releases the ticket.
    let tickets_releasing = hop(
        spans,
        "order:cancelled",
        &orders_expiring.span_id,
        "tickets",
    )?;
    hop(
        spans,
        "ticket:updated",
        &tickets_releasing.span_id,
        "orders",
    )?;
    Ok(Journey { order_post })
}

/// A server span of the caller's trace (a child of the caller's span) named `name`.
fn caller_request<'a>(spans: &'a [ReceivedSpan], name: &str) -> Result<&'a ReceivedSpan, String> {
    spans
        .iter()
        .find(|s| {
            s.kind == "SERVER" && s.parent_span_id.as_deref() == Some(CALLER_SPAN) && s.name == name
        })
        .ok_or_else(|| format!("no server span `{name}` under the caller's span"))
}

/// The spans of the caller's trace.
fn callers_trace(spans: &[ReceivedSpan]) -> Vec<ReceivedSpan> {
    spans
        .iter()
        .filter(|s| s.trace_id == CALLER_TRACE)
        .cloned()
        .collect()
}

/// Starts the marketplace exporting to `receiver`, with `extra` environment; lists a
/// ticket and waits until orders knows it. The app and the ticket's id.
async fn market_with_a_ticket(
    receiver: &OtlpReceiver,
    extra: &[(&str, &str)],
) -> (Marketplace, String) {
    let mut env = receiver.env();
    env.extend_from_slice(extra);
    let m = Marketplace::start_with(&env);
    let seller = m.client();
    m.sign_up(&seller, "seller@example.com").await;
    let ticket = m.sell(&seller, "Concert", 10.0).await;
    let ticket_id = ticket["id"].as_str().expect("ticket id").to_owned();
    // Order only once orders has the ticket (its ticket:created span ended), so that the
    // caller's trace holds exactly the requests the test makes.
    receiver
        .wait_for("orders to take in the ticket", DEADLINE, |spans| {
            spans.iter().any(|s| {
                s.attribute("spin.component.id") == Some("orders")
                    && s.attribute("messaging.destination.name") == Some("ticket:created")
            })
        })
        .await;
    (m, ticket_id)
}

/// `POST path` with the caller's traceparent.
async fn post_traced(
    m: &Marketplace,
    client: &reqwest::Client,
    path: &str,
    body: serde_json::Value,
) -> reqwest::Response {
    client
        .post(m.url(path))
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .json(&body)
        .send()
        .await
        .expect("POST")
}

#[tokio::test]
async fn a_paid_purchase_is_one_trace_from_the_stripe_call_to_the_completion() {
    let receiver = OtlpReceiver::start().await;
    let (m, ticket_id) = market_with_a_ticket(&receiver, &[]).await;
    let buyer = m.client();
    m.sign_up(&buyer, "buyer@example.com").await;
    // A browser that traces the purchase sends its span with both requests.
    let resp = post_traced(&m, &buyer, "/api/orders", json!({ "ticketId": ticket_id })).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let order_id = body(resp).await["id"]
        .as_str()
        .expect("order id")
        .to_owned();
    let payment = json!({ "orderId": order_id, "token": "pm_card_visa" });
    let resp = post_traced(&m, &buyer, "/api/payments", payment).await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    const PAY: &str = "payments POST /api/payments/...";
    let paid = |spans: &[ReceivedSpan]| -> Result<(), String> {
        let pay = caller_request(spans, PAY)?;
        let orders_paid = hop(spans, "payment:created", &pay.span_id, "orders")?;
        hop(spans, "order:completed", &orders_paid.span_id, "payments")?;
        Ok(())
    };
    let spans = receiver
        .wait_for(
            "the payment's journey in the caller's trace",
            DEADLINE,
            |spans| paid(&callers_trace(spans)).is_ok(),
        )
        .await;
    let trace = callers_trace(&spans);
    let listing = || trace.iter().map(describe).collect::<Vec<_>>().join("\n");
    let pay = caller_request(&trace, PAY).expect("waited for");
    assert_eq!(pay.attribute("http.response.status_code"), Some("201"));
    // The call to Stripe is the request's child and names Stripe's API, not the secrets.
    let stripe_calls: Vec<&ReceivedSpan> = trace
        .iter()
        .filter(|s| s.kind == "CLIENT" && s.parent_span_id.as_deref() == Some(&pay.span_id))
        .filter(|s| {
            s.attribute("url.full")
                .is_some_and(|url| url.contains("/v1/payment_intents"))
        })
        .collect();
    assert!(!stripe_calls.is_empty(), "{}", listing());
    for call in stripe_calls {
        assert_eq!(call.attribute("http.request.method"), Some("POST"));
        assert_eq!(call.attribute("http.response.status_code"), Some("200"));
    }
    caller_request(&trace, "orders POST /api/orders/...").expect("the order's POST");
}

#[tokio::test]
async fn an_order_is_one_trace_from_its_post_to_its_expiry_across_every_service() {
    let receiver = OtlpReceiver::start().await;
    let (m, ticket_id) =
        market_with_a_ticket(&receiver, &[("SPIN_VARIABLE_ORDER_LOCK_SECONDS", "2")]).await;
    let buyer = m.client();
    m.sign_up(&buyer, "buyer@example.com").await;
    let resp = post_traced(&m, &buyer, "/api/orders", json!({ "ticketId": ticket_id })).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let order = body(resp).await;
    assert_eq!(order["status"], "created");

    let spans = receiver
        .wait_for("the order's journey in one trace", DEADLINE, |spans| {
            journey(&callers_trace(spans)).is_ok()
        })
        .await;
    let trace = callers_trace(&spans);
    let listing = || trace.iter().map(describe).collect::<Vec<_>>().join("\n");
    let journey = journey(&trace).expect("checked by wait_for");

    let post = journey.order_post;
    // The manifest route the request matched (`http.route`).
    assert_eq!(post.name, "orders POST /api/orders/...");
    assert_eq!(post.attribute("http.response.status_code"), Some("201"));
    // Its host calls are its children: the sqlite statements and the outbox's publish.
    let children: Vec<&str> = trace
        .iter()
        .filter(|s| s.parent_span_id.as_deref() == Some(post.span_id.as_str()))
        .map(|s| s.name.as_str())
        .collect();
    assert!(
        children.iter().any(|n| n.starts_with("sqlite ")),
        "{children:?}"
    );
    assert!(children.contains(&"redis EVAL"), "{children:?}");

    // Every span of the trace hangs off another span of it (or the caller's): no orphan,
    // no foreign parent. No request or message failed (a host call may: a service's
    // first look at a database it has not created yet fails, and it creates it).
    for span in &trace {
        let parent = span
            .parent_span_id
            .as_deref()
            .expect("no root span but the caller's");
        assert!(
            parent == CALLER_SPAN || trace.iter().any(|s| s.span_id == parent),
            "orphan {}\n{}",
            describe(span),
            listing()
        );
        if span.kind != "CLIENT" {
            assert!(!span.failed, "failed span {}", describe(span));
        }
    }
    // Exactly one order POST: the trace is this order's alone.
    let posts = trace.iter().filter(|s| s.kind == "SERVER").count();
    assert_eq!(posts, 1, "{}", listing());
}
