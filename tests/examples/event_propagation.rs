//! Benchmark: how long a new ticket takes to reach the orders service over Redis
//! (`POST /api/tickets` → `ticket:created` via the outbox → orders' replica), measured as
//! the time until `POST /api/orders` for it stops answering 404.
//!
//!     cargo run --release -p tessera-blackbox --example event_propagation [ROUNDS]
//!
//! `PAUSE_MS=60` spaces the rounds (see `Marketplace::pause_between_rounds`).

use std::time::Instant;

use tessera_blackbox::marketplace::Marketplace;

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let m = Marketplace::start();
    let seller = m.client();
    m.sign_up(&seller, "seller@example.com").await;
    let buyer = m.client();
    m.sign_up(&buyer, "buyer@example.com").await;

    m.warm_up_propagation(&seller, &buyer).await;
    let pause = Marketplace::pause_between_rounds();
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..rounds {
        tokio::time::sleep(pause).await;
        let started = Instant::now();
        m.list_then_order(&seller, &buyer, &format!("Bench {i}"))
            .await;
        samples.push(started.elapsed());
    }
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    println!("rounds: {rounds}");
    println!(
        "create ticket → visible in orders: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
}
