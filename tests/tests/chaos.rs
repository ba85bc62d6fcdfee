//! The chaos run: the real workload against the production shape on one machine (one
//! `tessera up --component-id` process per SpinApp replica of deploy/k8s, nginx, one
//! Redis with its append-only file, localstripe), while replicas crash and Redis and
//! Stripe fail. Afterwards every invariant must hold, and every failed request must be
//! explained by a fault that was going on when it was made.
//!
//! Part of `cargo test` (about 3.5 minutes); RELIABILITY.md has every run and what each
//! found.
//!
//! ```sh
//! cargo test --release -p tessera-blackbox --test chaos -- --nocapture
//! CHAOS_SECONDS=600 CHAOS_BUYERS=20 cargo test --release -p tessera-blackbox --test chaos -- --nocapture
//! ```
//!
//! Knobs: `CHAOS_SECONDS` (180), `CHAOS_BUYERS` (20), `CHAOS_SELLERS` (6), `CHAOS_SEED`,
//! and `CHAOS_FAULTS`, the faults to inject, comma-separated (all by default:
//! `kill,redis-restart,redis-pause,stripe-hang,auth-down`; `none` for a baseline).
//! See RELIABILITY.md for what each fault is expected to do.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tessera_blackbox::event_log::EventLog;
use tessera_blackbox::faults::{Cause, FaultKind, FaultLog, RequestSummary};
use tessera_blackbox::invariants::{self, CHANNELS, Target};
use tessera_blackbox::topology::{Options, Topology};
use tessera_blackbox::workload::{self, Config, Rng};

/// `order_lock_seconds`: short, so that expiries happen all through the run.
const LOCK_SECONDS: u64 = 2;
/// How long after a fault ends its failures are still blamed on it (reconnects).
const GRACE: Duration = Duration::from_secs(2);
/// How long the state may take to settle once the run is over.
const SETTLE: Duration = Duration::from_secs(90);

fn knob(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a whole number")),
        Err(_) => default,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_marketplace_keeps_its_invariants_through_crashes_and_outages() {
    let seconds = knob("CHAOS_SECONDS", 180);
    let buyers = knob("CHAOS_BUYERS", 20) as usize;
    let sellers = knob("CHAOS_SELLERS", 6) as usize;
    let mut config = Config::new(
        sellers,
        buyers,
        Duration::from_secs(seconds),
        Duration::from_secs(LOCK_SECONDS),
    );
    config.seed = knob("CHAOS_SEED", config.seed);

    let topology = Topology::start_with(Options {
        order_lock_seconds: Some(LOCK_SECONDS),
        ..Options::default()
    })
    .expect("the topology starts");
    topology
        .register_stripe_webhook()
        .await
        .expect("localstripe takes the webhook");
    let target = Target {
        base_url: topology.base_url(),
        state_dir: topology.state_dir().to_owned(),
        redis_address: topology.redis_address(),
        stripe_base_url: topology.stripe_base_url(),
        stripe_secret_key: tessera_blackbox::stripe::SECRET_KEY.to_owned(),
    };
    // The checker needs CHANNELS; the rest give each violation its timeline.
    let watched: Vec<&str> = CHANNELS.iter().chain(TRACED).copied().collect();
    let events = EventLog::start(&topology.redis_address(), &watched);
    let faults = Arc::new(FaultLog::new());
    let stop = Arc::new(AtomicBool::new(false));
    // Faults from 5 s in until 15 s before the end, so the last ones heal while the
    // workload still runs.
    let window = (
        Duration::from_secs(5),
        config.duration.saturating_sub(Duration::from_secs(15)),
    );
    let monkey = {
        let (faults, stop) = (faults.clone(), stop.clone());
        let seed = config.seed;
        tokio::task::spawn_blocking(move || {
            let topology = Mutex::new(topology);
            Monkey::new(&topology, &faults, &stop, seed).run(&plan(), window);
            topology.into_inner().unwrap()
        })
    };

    let started = Instant::now();
    let record = workload::run(&target.base_url, &config).await;
    stop.store(true, Ordering::SeqCst);
    let mut topology = monkey.await.expect("the fault injector does not panic");
    let dead: Vec<_> = topology
        .replicas()
        .into_iter()
        .filter(|r| !r.alive)
        .collect();
    assert!(dead.is_empty(), "every replica runs again: {dead:?}");

    let report = invariants::check(&target, &record, &events, SETTLE).await;
    let requests = RequestSummary::new(&record, &faults, GRACE);
    println!(
        "== chaos run: {} s, {sellers} sellers, {buyers} buyers, lock window {LOCK_SECONDS} s, seed {} ==",
        record.elapsed.as_secs(),
        config.seed
    );
    let injected: Vec<String> = faults
        .counts()
        .iter()
        .map(|(label, n)| format!("{label} ×{n}"))
        .collect();
    println!("faults injected             {}", injected.join(", "));
    println!("event subscriber reconnects {}", events.reconnects());
    print!("{requests}");
    print!("{report}");

    print_timelines(&report, &events, &faults, started);
    if !report.passed() {
        print_outboxes(&target.state_dir);
    }
    assert!(report.passed(), "invariants violated:\n{report}");
    assert!(
        requests.unexplained.is_empty(),
        "failures no fault explains:\n{requests}"
    );
    let server_errors = requests.server_errors();
    let stray: Vec<_> = server_errors
        .iter()
        .filter(|(cause, _)| !matches!(cause, Cause::ServiceDown | Cause::InFlightAtKill))
        .collect();
    assert!(
        stray.is_empty(),
        "5xx only while a whole service was down or in flight at a kill: {stray:?}\n{requests}"
    );
    assert!(report.counts.journeys_completed > 0);
}

/// The channels watched only to explain violations.
const TRACED: &[&str] = &[
    "ticket:created",
    "ticket:updated",
    "order:created",
    "order:cancelled",
    "order:completed",
    "payment:created",
    "payment:refunded",
];

/// For each id a violation names: every watched event that carries it (when, channel,
/// envelope id, version) with the faults around it, then the run's faults; so a lost or
/// doubled event can be told from a late one, and a relay's republish (same envelope
/// id) from two publishes.
fn print_timelines(
    report: &invariants::Report,
    events: &EventLog,
    faults: &FaultLog,
    started: Instant,
) {
    if report.passed() {
        return;
    }
    let all: Vec<_> = CHANNELS
        .iter()
        .chain(TRACED)
        .flat_map(|channel| events.on(channel))
        .collect();
    let mentions = |event: &tessera_blackbox::event_log::Event, id: &str| {
        let data = &event.envelope["data"];
        [&data["id"], &data["order_id"], &data["ticket"]["id"]]
            .iter()
            .any(|value| value.as_str() == Some(id))
    };
    let ids: std::collections::BTreeSet<&String> =
        report.violations.iter().flat_map(|v| &v.ids).collect();
    for id in ids {
        println!("timeline of {id}:");
        let mut seen: Vec<_> = all.iter().filter(|e| mentions(e, id)).collect();
        seen.sort_by_key(|e| e.at);
        for event in seen {
            let near: Vec<String> = faults
                .faults()
                .iter()
                .filter(|f| f.overlaps(event.at, event.at, Duration::from_secs(3)))
                .map(|f| f.kind.label())
                .collect();
            println!(
                "  {:>9.3?} {:<20} id {} version {} faults around: {near:?}",
                event.at - started,
                event.channel,
                event.envelope["id"],
                event.envelope["data"]["version"],
            );
        }
    }
    println!("faults:");
    for fault in faults.faults() {
        let end = fault.end.map(|end| format!("{:.3?}", end - started));
        println!(
            "  {:>9.3?} .. {:>9} {}",
            fault.start - started,
            end.unwrap_or_default(),
            fault.kind.label()
        );
    }
}

/// What each service's outbox still holds at the end: events stuck there (claimed or
/// not) tell a relay that never ran from an event published and lost.
fn print_outboxes(state_dir: &std::path::Path) {
    for label in ["tickets", "orders", "payments"] {
        let summary = invariants::snapshot::open(state_dir, label).and_then(|db| {
            db.query_row(
                "SELECT COUNT(*), COALESCE(MIN(claimed_until), 0), COALESCE(MAX(claimed_until), 0), \
                 COALESCE(GROUP_CONCAT(channel || ' ' || json_extract(CAST(payload AS TEXT), '$.data.id'), ', '), '') \
                 FROM outbox",
                [],
                |row| {
                    Ok(format!(
                        "{} rows, claimed_until {}..{}: {}",
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, String>(3)?
                    ))
                },
            )
        });
        match summary {
            Ok(summary) => println!("{label} outbox at the end: {summary}"),
            Err(err) => println!("{label} outbox unreadable: {err}"),
        }
    }
}

/// Injects faults one at a time, each healed before the next, with quiet spells between.
struct Monkey<'a> {
    topology: &'a Mutex<Topology>,
    faults: &'a FaultLog,
    stop: &'a AtomicBool,
    rng: Rng,
    /// Services in the order their replicas are killed (round-robin, so every service
    /// loses replicas).
    services: Vec<String>,
    next_service: usize,
}

/// The faults, in the order they are injected (then again from the top).
#[derive(Debug, Clone, Copy)]
enum Step {
    KillReplica,
    RestartRedis,
    PauseRedis,
    HangStripe,
    AuthDown,
}

const PLAN: [Step; 8] = [
    Step::KillReplica,
    Step::RestartRedis,
    Step::KillReplica,
    Step::PauseRedis,
    Step::KillReplica,
    Step::HangStripe,
    Step::KillReplica,
    Step::AuthDown,
];

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::KillReplica => "kill",
            Step::RestartRedis => "redis-restart",
            Step::PauseRedis => "redis-pause",
            Step::HangStripe => "stripe-hang",
            Step::AuthDown => "auth-down",
        }
    }
}

/// [`PLAN`], keeping the faults `CHAOS_FAULTS` names.
fn plan() -> Vec<Step> {
    let Ok(wanted) = std::env::var("CHAOS_FAULTS") else {
        return PLAN.to_vec();
    };
    let wanted: Vec<&str> = wanted.split(',').map(str::trim).collect();
    for name in &wanted {
        assert!(
            *name == "none" || PLAN.iter().any(|s| s.name() == *name),
            "CHAOS_FAULTS: unknown fault {name:?}"
        );
    }
    PLAN.into_iter()
        .filter(|step| wanted.contains(&step.name()))
        .collect()
}

impl<'a> Monkey<'a> {
    fn new(
        topology: &'a Mutex<Topology>,
        faults: &'a FaultLog,
        stop: &'a AtomicBool,
        seed: u64,
    ) -> Self {
        let mut rng = Rng::new(seed ^ 0xc4a0_5eed);
        let mut services: Vec<String> = topology
            .lock()
            .unwrap()
            .services()
            .into_iter()
            .map(|s| s.name)
            .collect();
        // Fisher–Yates.
        for i in (1..services.len()).rev() {
            services.swap(i, rng.below(i as u64 + 1) as usize);
        }
        Monkey {
            topology,
            faults,
            stop,
            rng,
            services,
            next_service: 0,
        }
    }

    /// Injects the faults of `plan`, again and again, from `window.0` after now until
    /// `window.1` after now.
    fn run(&mut self, plan: &[Step], window: (Duration, Duration)) {
        let start = Instant::now();
        if plan.is_empty() || !self.pause(window.0) {
            return;
        }
        for step in plan.iter().cycle() {
            if start.elapsed() >= window.1 || self.stop.load(Ordering::SeqCst) {
                return;
            }
            match step {
                Step::KillReplica => self.kill_replica(),
                Step::RestartRedis => self.restart_redis(),
                Step::PauseRedis => self.pause_redis(),
                Step::HangStripe => self.hang_stripe(),
                Step::AuthDown => self.take_down("auth"),
            }
            let quiet = Duration::from_millis(2000 + self.rng.below(2000));
            if !self.pause(quiet) {
                return;
            }
        }
    }

    /// Sleeps `duration`, or less if the run is stopped; whether it is still running.
    fn pause(&self, duration: Duration) -> bool {
        let until = Instant::now() + duration;
        while Instant::now() < until {
            if self.stop.load(Ordering::SeqCst) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }

    /// `kill -9` of one replica of the next service, restarted 1–4 s later.
    /// Expected: nginx sends new requests to the other replicas (a refused connection is
    /// retried on the next upstream); a request the victim was serving gets nginx's 502
    /// (or is cut), and whatever it had committed stays committed: its outbox rows are
    /// relayed by the next request or message any replica of the service handles, and its
    /// events are consumed by the other replicas (each subscribes). Expiration's claims
    /// are single-owner (ZREM), so a killed expiration replica loses no deadline.
    fn kill_replica(&mut self) {
        let service = self.services[self.next_service % self.services.len()].clone();
        self.next_service += 1;
        let alive: Vec<usize> = self
            .topology
            .lock()
            .unwrap()
            .replicas()
            .into_iter()
            .filter(|r| r.service == service && r.alive)
            .map(|r| r.index)
            .collect();
        if alive.is_empty() {
            return;
        }
        let index = alive[self.rng.below(alive.len() as u64) as usize];
        let killed = self.faults.begin(FaultKind::ReplicaKilled {
            service: service.clone(),
        });
        self.topology
            .lock()
            .unwrap()
            .kill_replica(&service, index)
            .expect("kill a replica");
        self.faults.struck(killed);
        let down = (alive.len() == 1).then(|| {
            self.faults.begin(FaultKind::ServiceDown {
                service: service.clone(),
            })
        });
        let outage = Duration::from_millis(1000 + self.rng.below(3000));
        self.pause(outage);
        self.topology
            .lock()
            .unwrap()
            .restart_replica(&service, index)
            .expect("restart a replica");
        if let Some(down) = down {
            self.faults.end(down);
        }
        self.faults.end(killed);
    }

    /// Every replica of `service` killed for 3 s. Only done to auth, which consumes no
    /// events (a service with no live replica misses what is published meanwhile:
    /// pub/sub keeps nothing). Expected: nginx answers 502 for signups meanwhile; the
    /// other services verify sessions themselves and go on.
    fn take_down(&mut self, service: &str) {
        let replicas: Vec<usize> = self
            .topology
            .lock()
            .unwrap()
            .replicas()
            .into_iter()
            .filter(|r| r.service == service)
            .map(|r| r.index)
            .collect();
        let mut killed = Vec::new();
        for &index in &replicas {
            let fault = self.faults.begin(FaultKind::ReplicaKilled {
                service: service.to_owned(),
            });
            self.topology
                .lock()
                .unwrap()
                .kill_replica(service, index)
                .expect("kill a replica");
            self.faults.struck(fault);
            killed.push(fault);
        }
        let down = self.faults.begin(FaultKind::ServiceDown {
            service: service.to_owned(),
        });
        self.pause(Duration::from_secs(3));
        for (&index, fault) in replicas.iter().zip(killed) {
            self.topology
                .lock()
                .unwrap()
                .restart_replica(service, index)
                .expect("restart a replica");
            if Some(&index) == replicas.first() {
                self.faults.end(down);
            }
            self.faults.end(fault);
        }
    }

    /// Redis killed (SIGKILL) and started again 1 s later with its append-only file.
    /// Expected: publishes fail meanwhile and stay in the services' outboxes, relayed on
    /// their next request or message; every subscriber (the hosts' triggers, this test's
    /// event log) reconnects; deadlines (the sorted set, the timer keys) survive in the
    /// AOF, and a timer that passed while Redis was down fires when Redis expires it or is
    /// swept; orders cancels orders still overdue 2 s after their deadline itself.
    fn restart_redis(&mut self) {
        let fault = self.faults.begin(FaultKind::RedisDown);
        self.topology.lock().unwrap().redis_stop();
        self.pause(Duration::from_secs(1));
        self.topology
            .lock()
            .unwrap()
            .redis_start()
            .expect("Redis starts again");
        self.faults.end(fault);
    }

    /// Redis frozen (SIGSTOP) for 3 s, longer than the lock window. Expected: calls to
    /// Redis hang and resume (requests are slow, not failed); expirations due meanwhile go
    /// out late, and orders cancels overdue orders on its own after 2 s; a payment at
    /// the deadline is refused (400 expired) or refunded, never kept without a ticket.
    fn pause_redis(&mut self) {
        let fault = self.faults.begin(FaultKind::RedisPaused);
        self.topology
            .lock()
            .unwrap()
            .redis_pause()
            .expect("SIGSTOP Redis");
        self.pause(Duration::from_secs(3));
        self.topology
            .lock()
            .unwrap()
            .redis_resume()
            .expect("SIGCONT Redis");
        self.faults.end(fault);
    }

    /// localstripe frozen (SIGSTOP) for 5 s. Expected: payments wait for Stripe (their
    /// outbound timeout is longer) and then answer 201, or 503 "Stripe unreachable" with
    /// nothing recorded; refunds due meanwhile are retried with back-off and made later.
    fn hang_stripe(&mut self) {
        let fault = self.faults.begin(FaultKind::StripeHung);
        self.topology
            .lock()
            .unwrap()
            .stripe_pause()
            .expect("SIGSTOP Stripe");
        self.pause(Duration::from_secs(5));
        self.topology
            .lock()
            .unwrap()
            .stripe_resume()
            .expect("SIGCONT Stripe");
        self.faults.end(fault);
    }
}
