//! What a chaos run did to the system, and when: the fault log a load generator's
//! failures are read against ("5xx only while a whole service was down").

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::workload::{Endpoint, Failure, Outcome, Record, RequestLog};

/// A kind of fault, with what it hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// One replica of a service was killed (`kill -9`); it stays down until restarted.
    ReplicaKilled { service: String },
    /// No replica of a service was alive.
    ServiceDown { service: String },
    /// Redis was stopped (and later started again, empty or not).
    RedisDown,
    /// Redis was frozen (SIGSTOP): connections stay open and hang.
    RedisPaused,
    /// Stripe (localstripe) was frozen: connections open, nothing answered.
    StripeHung,
}

impl FaultKind {
    /// A short label for tables.
    pub fn label(&self) -> String {
        match self {
            FaultKind::ReplicaKilled { service } => format!("kill -9 {service} replica"),
            FaultKind::ServiceDown { service } => format!("{service} fully down"),
            FaultKind::RedisDown => "Redis restarted".to_owned(),
            FaultKind::RedisPaused => "Redis paused".to_owned(),
            FaultKind::StripeHung => "Stripe hung".to_owned(),
        }
    }
}

/// One fault: from `start` until `end` (`None` while it lasts).
#[derive(Debug, Clone)]
pub struct Fault {
    pub kind: FaultKind,
    /// Just before the fault was injected.
    pub start: Instant,
    /// Once the injection was done (for a kill: the process is gone), if recorded.
    pub struck: Option<Instant>,
    pub end: Option<Instant>,
}

impl Fault {
    /// Whether the fault overlaps `[from, to]`, its end stretched by `grace` (what a
    /// fault leaves behind for a moment: reconnects, an ingress that has not yet noticed).
    pub fn overlaps(&self, from: Instant, to: Instant, grace: Duration) -> bool {
        let end = self.end.unwrap_or_else(Instant::now) + grace;
        self.start <= to && from <= end
    }
}

/// The faults of a run, appended as they are injected; shared by the injector and
/// whoever reads failures against it.
#[derive(Debug, Default)]
pub struct FaultLog {
    faults: Mutex<Vec<Fault>>,
}

/// Which fault a [`FaultLog::begin`] started, to [`FaultLog::end`] it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultId(usize);

impl FaultLog {
    pub fn new() -> FaultLog {
        FaultLog::default()
    }

    /// Records that `kind` starts now.
    pub fn begin(&self, kind: FaultKind) -> FaultId {
        let mut faults = self.faults.lock().unwrap();
        faults.push(Fault {
            kind,
            start: Instant::now(),
            struck: None,
            end: None,
        });
        FaultId(faults.len() - 1)
    }

    /// Records that fault `id` has been injected (the process is dead, the signal sent).
    pub fn struck(&self, id: FaultId) {
        let mut faults = self.faults.lock().unwrap();
        if let Some(fault) = faults.get_mut(id.0) {
            fault.struck.get_or_insert_with(Instant::now);
        }
    }

    /// Records that fault `id` is over, now.
    pub fn end(&self, id: FaultId) {
        let mut faults = self.faults.lock().unwrap();
        if let Some(fault) = faults.get_mut(id.0) {
            fault.end.get_or_insert_with(Instant::now);
        }
    }

    /// Every fault so far, in the order they started.
    pub fn faults(&self) -> Vec<Fault> {
        self.faults.lock().unwrap().clone()
    }

    /// How many faults of each label, in first-seen order.
    pub fn counts(&self) -> Vec<(String, usize)> {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for fault in self.faults() {
            let label = match &fault.kind {
                FaultKind::ReplicaKilled { .. } => "kill -9 replica".to_owned(),
                kind => kind.label(),
            };
            match counts.iter_mut().find(|(l, _)| *l == label) {
                Some((_, n)) => *n += 1,
                None => counts.push((label, 1)),
            }
        }
        counts
    }
}

/// Why a failed request failed, read against the faults of the run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cause {
    /// Every replica of its service was down meanwhile.
    ServiceDown,
    /// In flight when a replica of its service was killed (nginx: 502).
    InFlightAtKill,
    /// Redis was down or frozen meanwhile.
    Redis,
    /// Stripe was hung meanwhile (payments only).
    Stripe,
    /// No fault explains it.
    Unexplained,
}

/// The fault that explains a failure of `request`, if any. Faults count for `grace`
/// after they end (reconnects, an ingress noticing a replica is back).
pub fn cause(request: &RequestLog, faults: &FaultLog, grace: Duration) -> Cause {
    let service = request.endpoint.service();
    let (from, to) = (request.started, request.finished);
    let mut causes: Vec<Cause> = faults
        .faults()
        .iter()
        .filter_map(|fault| match &fault.kind {
            FaultKind::ServiceDown { service: s } if s == service => fault
                .overlaps(from, to, grace)
                .then_some(Cause::ServiceDown),
            // The request was under way when the replica died: begun before the kill was
            // done, ended after it began. (nginx passes a request that finds the replica
            // gone, connection refused, to the next one; only one the replica had taken
            // fails, with 502.)
            FaultKind::ReplicaKilled { service: s } if s == service => {
                let killed = fault.struck.unwrap_or(fault.start);
                (from <= killed && fault.start <= to).then_some(Cause::InFlightAtKill)
            }
            FaultKind::RedisDown | FaultKind::RedisPaused => {
                fault.overlaps(from, to, grace).then_some(Cause::Redis)
            }
            FaultKind::StripeHung if request.endpoint == Endpoint::Pay => {
                fault.overlaps(from, to, grace).then_some(Cause::Stripe)
            }
            _ => None,
        })
        .collect();
    causes.sort();
    causes.into_iter().next().unwrap_or(Cause::Unexplained)
}

impl Cause {
    pub fn label(&self) -> &'static str {
        match self {
            Cause::ServiceDown => "its whole service was down",
            Cause::InFlightAtKill => "in flight at a replica kill",
            Cause::Redis => "Redis down or paused",
            Cause::Stripe => "Stripe hung",
            Cause::Unexplained => "UNEXPLAINED",
        }
    }
}

/// A run's requests by outcome, and its failures by kind and by the fault that explains
/// them.
#[derive(Debug, Clone, Default)]
pub struct RequestSummary {
    pub total: usize,
    pub succeeded: usize,
    /// Non-2xx answers the contract gives (lost races, 400s, 402, 409).
    pub expected: usize,
    /// payments' 503 while Stripe was unreachable.
    pub stripe_unavailable: usize,
    /// (failure, cause) → how many.
    pub failures: BTreeMap<(Failure, Cause), usize>,
    /// The failures no fault explains.
    pub unexplained: Vec<RequestLog>,
}

impl RequestSummary {
    /// Reads `record`'s requests against `faults` (see [`cause`]).
    pub fn new(record: &Record, faults: &FaultLog, grace: Duration) -> RequestSummary {
        let mut summary = RequestSummary {
            total: record.requests.len(),
            ..RequestSummary::default()
        };
        for request in &record.requests {
            match request.outcome {
                Outcome::Success(_) => summary.succeeded += 1,
                Outcome::Expected(_) => summary.expected += 1,
                Outcome::StripeUnavailable => summary.stripe_unavailable += 1,
                Outcome::Failed(failure) => {
                    let why = cause(request, faults, grace);
                    if why == Cause::Unexplained {
                        summary.unexplained.push(request.clone());
                    }
                    *summary.failures.entry((failure, why)).or_insert(0) += 1;
                }
            }
        }
        summary
    }

    pub fn failed(&self) -> usize {
        self.failures.values().sum()
    }

    /// The 5xx answers, by cause.
    pub fn server_errors(&self) -> BTreeMap<Cause, usize> {
        let mut by_cause = BTreeMap::new();
        for ((failure, why), n) in &self.failures {
            if let Failure::ServerError(_) = failure {
                *by_cause.entry(why.clone()).or_insert(0) += n;
            }
        }
        by_cause
    }
}

impl fmt::Display for RequestSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "requests                    {} total: {} ok, {} expected 4xx, {} payments 503 (Stripe), {} failed",
            self.total,
            self.succeeded,
            self.expected,
            self.stripe_unavailable,
            self.failed()
        )?;
        for ((failure, why), n) in &self.failures {
            writeln!(f, "  {:<24}  {:<28}  {n}", failure.label(), why.label())?;
        }
        for request in self.unexplained.iter().take(20) {
            writeln!(
                f,
                "  unexplained: {:?} {:?} after {} ms: {}",
                request.endpoint,
                request.outcome,
                (request.finished - request.started).as_millis(),
                request.detail
            )?;
        }
        Ok(())
    }
}
