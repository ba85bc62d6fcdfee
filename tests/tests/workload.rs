//! The load generator and the invariant checker against the single-process app: a
//! short run of the real workload keeps every rule, and the checker does report a
//! broken rule when the state is forged behind the services' backs.

use std::time::Duration;

use serde_json::json;
use tessera_blackbox::event_log::EventLog;
use tessera_blackbox::invariants::{self, CHANNELS, Report, Rule, Target};
use tessera_blackbox::marketplace::{Marketplace, envelope};
use tessera_blackbox::workload::{self, Config, Record};

const LOCK: Duration = Duration::from_secs(2);

fn marketplace() -> Marketplace {
    Marketplace::start_with(&[("SPIN_VARIABLE_ORDER_LOCK_SECONDS", "2")])
}

fn target(m: &Marketplace) -> Target {
    Target {
        base_url: m.app.base_url.clone(),
        state_dir: m.state_dir().to_owned(),
        redis_address: m.redis.address(),
        stripe_base_url: m.stripe.base_url(),
        stripe_secret_key: tessera_blackbox::stripe::SECRET_KEY.to_owned(),
    }
}

/// Runs the workload with the events watched, then checks (settling up to `settle`).
async fn run(m: &Marketplace, config: &Config, settle: Duration) -> (Record, Report, EventLog) {
    let events = EventLog::start(&m.redis.address(), CHANNELS);
    let record = workload::run(&m.app.base_url, config).await;
    let report = invariants::check(&target(m), &record, &events, settle).await;
    println!("{report}");
    (record, report, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_short_run_of_the_real_workload_keeps_every_invariant() {
    let m = marketplace();
    let config = Config::new(4, 10, Duration::from_secs(20), LOCK);
    let (record, report, _events) = run(&m, &config, Duration::from_secs(30)).await;

    assert!(report.passed(), "violations:\n{report}");
    // Nothing was faulted: no request may fail.
    let failures: Vec<_> = record.failures().collect();
    assert!(failures.is_empty(), "failed requests: {failures:#?}");
    let c = &report.counts;
    assert!(c.journeys_completed >= 20, "{report}");
    assert!(
        c.orders.get("complete").copied().unwrap_or(0) > 0,
        "{report}"
    );
    assert!(
        c.orders.get("cancelled").copied().unwrap_or(0) > 0,
        "{report}"
    );
    assert_eq!(c.charges_kept, c.orders["complete"], "{report}");
    assert!(report.propagation_samples > 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_checker_reports_a_duplicate_expiry_and_a_forged_ticket_holder() {
    let m = marketplace();
    let config = Config::new(2, 4, Duration::from_secs(6), LOCK);
    let (record, report, events) = run(&m, &config, Duration::from_secs(30)).await;
    assert!(report.passed(), "the run itself keeps the rules:\n{report}");

    // A second `expiration:complete` for an order that already expired.
    let expired = events.on("expiration:complete")[0]
        .data_str("order_id")
        .expect("order_id")
        .to_owned();
    m.redis.publish(
        "expiration:complete",
        &envelope("expiration:complete", json!({"order_id": expired})),
    );
    // A ticket the tickets service says is free now claims a holder that does not exist.
    let seller = m.client();
    m.sign_up(&seller, "forger@example.com").await;
    let forged = m.sell_id(&seller, "Forged", 12.5).await;
    let db = rusqlite::Connection::open(m.state_dir().join("sqlite/tickets.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let changed = db
        .execute(
            "UPDATE tickets SET order_id = 'forged-order' WHERE id = ?1",
            [&forged],
        )
        .unwrap();
    assert_eq!(changed, 1);

    let report = invariants::check(&target(&m), &record, &events, Duration::from_secs(3)).await;
    println!("{report}");
    let duplicates = report.of(Rule::DuplicateExpiration);
    assert_eq!(duplicates.len(), 1, "{report}");
    assert_eq!(duplicates[0].ids, [expired], "{report}");
    let mismatched = report.of(Rule::TicketHolderMismatch);
    assert_eq!(mismatched.len(), 1, "{report}");
    assert_eq!(
        mismatched[0].ids,
        [forged.clone(), "forged-order".to_owned()]
    );
    assert_eq!(report.violations.len(), 2, "nothing else: {report}");
}
