//! Where the milliseconds of event propagation go, read from the host's own traces.
//!
//!   cargo run --release -p tessera-blackbox --example propagation_breakdown [ROUNDS]
//!
//! `PAUSE_MS=60` spaces the rounds (see `Marketplace::pause_between_rounds`);
//! `TESSERA_MANIFEST` runs another manifest (the activity and search rows are left out when it
//! lacks them). Prints the median and the slowest round's whole trace, then the table.
//!
//! Starts the marketplace exporting spans to an in-process OTLP receiver, lists ROUNDS
//! tickets one at a time (each `POST /api/tickets` with its own trace) and, like
//! `event_propagation`, orders each as soon as orders knows it. Then, per stage of each
//! ticket's journey, the median and p99 over the rounds:
//!
//! - `POST /api/tickets`: the tickets request (its sqlite statements, the relay's publish);
//! - request start → `PUBLISH`: until the relay's publish leaves;
//! - `PUBLISH` done → orders' span starts: Redis delivery, the subscriber, an instance slot;
//! - orders' `ticket:created` span: instantiation and the handler;
//! - orders' span ends → the accepted `POST /api/orders` starts: the client's polling;
//! - the accepted `POST /api/orders`: its statements and the relay of `order:created`;
//! - client view: `POST` sent → the order accepted.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tessera_blackbox::marketplace::{Marketplace, body};
use tessera_blackbox::otlp::{OtlpReceiver, ReceivedSpan};

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let receiver = OtlpReceiver::start().await;
    let m = Marketplace::start_with(&receiver.env());
    let seller = m.client();
    m.sign_up(&seller, "seller@example.com").await;
    let buyer = m.client();
    m.sign_up(&buyer, "buyer@example.com").await;

    let mut traces = Vec::with_capacity(rounds);
    let mut client_view = Vec::with_capacity(rounds);
    m.warm_up_propagation(&seller, &buyer).await;
    let pause = Marketplace::pause_between_rounds();
    for i in 0..rounds {
        tokio::time::sleep(pause).await;
        let trace_id = format!("{:032x}", 0x7e55e7a_u128 << 64 | (i as u128 + 1));
        let started = Instant::now();
        let ticket = seller
            .post(m.url("/api/tickets"))
            .header("traceparent", format!("00-{trace_id}-00000000000000aa-01"))
            .json(&json!({"title": format!("Bench {i}"), "price": 10}))
            .send()
            .await
            .expect("POST /api/tickets");
        assert_eq!(ticket.status(), StatusCode::CREATED);
        let id = body(ticket).await["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        // The polls join the ticket's trace: the accepted one shows up beside the events.
        let traceparent = format!("00-{trace_id}-00000000000000bb-01");
        m.order_the_moment_known_in_trace(&buyer, &id, Some(&traceparent))
            .await;
        client_view.push(started.elapsed());
        traces.push(trace_id);
    }

    // Activity and search only when the manifest has them (`TESSERA_MANIFEST` may point
    // at one without, to compare).
    let manifest = std::fs::read_to_string(Marketplace::manifest()).unwrap_or_default();
    let consumers: Vec<&str> = ["orders", "activity", "search"]
        .into_iter()
        .filter(|c| *c == "orders" || manifest.contains(&format!("[component.{c}]")))
        .collect();
    let spans = receiver
        .wait_for("every round's spans", Duration::from_secs(30), |spans| {
            traces
                .iter()
                .all(|t| consumers.iter().all(|c| consumer(spans, t, c).is_some()))
        })
        .await;

    let mut stages: Vec<(String, Vec<Duration>)> = vec![
        ("POST /api/tickets (server span)".into(), vec![]),
        ("request start → PUBLISH sent".into(), vec![]),
        ("PUBLISH done → orders' span starts".into(), vec![]),
        ("orders' ticket:created span".into(), vec![]),
        (
            "PUBLISH done → activity (Python) span starts".into(),
            vec![],
        ),
        (
            "PUBLISH done → search (TypeScript) span starts".into(),
            vec![],
        ),
        (
            "orders' span ends → the accepted POST /api/orders starts".into(),
            vec![],
        ),
        ("the accepted POST /api/orders (server span)".into(), vec![]),
    ];
    for trace in &traces {
        let Some(post) = spans
            .iter()
            .find(|s| &s.trace_id == trace && s.kind == "SERVER")
        else {
            continue;
        };
        let publish = spans.iter().find(|s| {
            &s.trace_id == trace
                && s.parent_span_id.as_deref() == Some(&post.span_id)
                && s.name == "redis EVAL"
        });
        let Some(publish) = publish else { continue };
        let orders = consumer(&spans, trace, "orders").expect("waited for");
        stages[0]
            .1
            .push(between(post.start_unix_nanos, post.end_unix_nanos));
        stages[1]
            .1
            .push(between(post.start_unix_nanos, publish.start_unix_nanos));
        stages[2]
            .1
            .push(between(publish.end_unix_nanos, orders.start_unix_nanos));
        stages[3]
            .1
            .push(between(orders.start_unix_nanos, orders.end_unix_nanos));
        for (stage, component) in [(4, "activity"), (5, "search")] {
            let Some(span) = consumer(&spans, trace, component) else {
                continue;
            };
            stages[stage]
                .1
                .push(between(publish.end_unix_nanos, span.start_unix_nanos));
        }
        // The polls are in the ticket's trace too; the last one is the accepted one.
        let accepted = spans
            .iter()
            .filter(|s| {
                &s.trace_id == trace && s.kind == "SERVER" && s.name.contains("/api/orders")
            })
            .max_by_key(|s| s.start_unix_nanos);
        if let Some(accepted) = accepted {
            stages[6]
                .1
                .push(between(orders.end_unix_nanos, accepted.start_unix_nanos));
            stages[7]
                .1
                .push(between(accepted.start_unix_nanos, accepted.end_unix_nanos));
        }
    }
    stages.push((
        "client: POST sent → order accepted".into(),
        client_view.clone(),
    ));

    // Two rounds' whole traces, every span against the request's start: the median
    // round and the slowest, as the client saw them.
    let mut by_duration: Vec<usize> = (0..traces.len()).collect();
    by_duration.sort_by_key(|&i| client_view[i]);
    for (label, index) in [
        ("median", by_duration.get(by_duration.len() / 2)),
        ("slowest", by_duration.last()),
    ] {
        let Some(&index) = index else { continue };
        let trace = &traces[index];
        let mut mine: Vec<&ReceivedSpan> = spans.iter().filter(|s| &s.trace_id == trace).collect();
        mine.sort_by_key(|s| s.start_unix_nanos);
        let zero = mine.first().map_or(0, |s| s.start_unix_nanos);
        println!(
            "{label} round, {:.2} ms as the client saw it, trace {trace}:",
            ms(client_view[index])
        );
        for span in mine {
            println!(
                "  {:>7.2} → {:>7.2} ms  {} {}",
                ms(between(zero, span.start_unix_nanos)),
                ms(between(zero, span.end_unix_nanos)),
                span.name,
                span.attribute("db.query.text").unwrap_or_default()
            );
        }
    }

    println!("rounds: {rounds}");
    println!("| stage | p50 | p99 |");
    println!("|---|---|---|");
    for (name, mut samples) in stages {
        if samples.is_empty() {
            continue;
        }
        samples.sort();
        println!(
            "| {name} | {:.2} ms | {:.2} ms |",
            ms(quantile(&samples, 0.5)),
            ms(quantile(&samples, 0.99))
        );
    }
}

fn consumer<'a>(
    spans: &'a [ReceivedSpan],
    trace: &str,
    component: &str,
) -> Option<&'a ReceivedSpan> {
    spans.iter().find(|s| {
        s.trace_id == trace
            && s.kind == "CONSUMER"
            && s.attribute("spin.component.id") == Some(component)
            && s.attribute("messaging.destination.name") == Some("ticket:created")
    })
}

fn between(from: u64, to: u64) -> Duration {
    Duration::from_nanos(to.saturating_sub(from))
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
