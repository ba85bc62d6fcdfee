//! The marketplace's real workload over plain HTTP: sellers list tickets, buyers find
//! them (the list and search), race to order them, then pay, abandon, cancel, pay right
//! at the deadline, or cancel and pay at once. Bounded in time and in requests; every
//! request has a timeout and its outcome is recorded, so a run can be read afterwards
//! against what was done to the system meanwhile ([`crate::faults::FaultLog`]), and
//! checked ([`crate::invariants`]).
//!
//! One cookie jar per user. Under contention a 400 `Ticket is already reserved` is a
//! normal outcome, as are the contract's other 400s, 402, 409, and a 503 from payments
//! while Stripe is unreachable (counted apart): none of them is a failure.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Client, Method};
use serde_json::{Value, json};

/// How big and how long a run is.
#[derive(Debug, Clone)]
pub struct Config {
    pub sellers: usize,
    pub buyers: usize,
    /// No journey starts after this; the ones under way finish (within a lock window
    /// and a few request timeouts).
    pub duration: Duration,
    /// No request is sent after this many.
    pub max_requests: u64,
    /// Every request's overall timeout (connect included).
    pub request_timeout: Duration,
    /// The app's `order_lock_seconds`, for paying at the deadline.
    pub lock_window: Duration,
    /// Seeds the actors' choices.
    pub seed: u64,
}

impl Config {
    /// `sellers` and `buyers` for `duration` against an app whose lock window is
    /// `lock_window`; at most 1000 requests per second of the run, 15 s per request
    /// (longer than a Stripe hang the chaos run injects).
    pub fn new(sellers: usize, buyers: usize, duration: Duration, lock_window: Duration) -> Self {
        Config {
            sellers,
            buyers,
            duration,
            max_requests: 1000 * duration.as_secs().max(1),
            request_timeout: Duration::from_secs(15),
            lock_window,
            seed: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64),
        }
    }
}

/// The API calls of a journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    SignUp,
    SignIn,
    ListTicket,
    BrowseTickets,
    Search,
    PlaceOrder,
    ShowOrder,
    Pay,
    Cancel,
}

impl Endpoint {
    /// The service that answers it.
    pub fn service(self) -> &'static str {
        match self {
            Endpoint::SignUp | Endpoint::SignIn => "auth",
            Endpoint::ListTicket | Endpoint::BrowseTickets => "tickets",
            Endpoint::Search => "search",
            Endpoint::PlaceOrder | Endpoint::ShowOrder | Endpoint::Cancel => "orders",
            Endpoint::Pay => "payments",
        }
    }

    /// Whether the contract makes `status` (not 2xx) a normal answer here.
    fn expects(self, status: u16) -> bool {
        match self {
            // A retried signup whose first attempt went through: `Email in use`.
            Endpoint::SignUp => status == 400,
            // 404 unknown ticket (orders has not heard of it yet), 400 reserved.
            Endpoint::PlaceOrder => matches!(status, 400 | 404 | 409),
            // Cancelled, expired, already paid; declined; cancelled while paying.
            Endpoint::Pay => matches!(status, 400 | 402 | 409),
            // `Cannot cancel a completed order`.
            Endpoint::Cancel => matches!(status, 400 | 409),
            _ => false,
        }
    }
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Failure {
    /// No connection could be made.
    Connect,
    /// No complete answer within the request timeout.
    Timeout,
    /// The connection broke after the request was sent (reset, empty reply).
    Broken,
    /// A 5xx (other than payments' 503 for Stripe); nginx answers 502 for a request
    /// whose upstream died under it.
    ServerError(u16),
    /// A 4xx the contract does not give for this call.
    UnexpectedStatus(u16),
}

impl Failure {
    /// A short label for tables (`5xx 502`, `timeout`).
    pub fn label(self) -> String {
        match self {
            Failure::Connect => "connection refused".to_owned(),
            Failure::Timeout => "timeout".to_owned(),
            Failure::Broken => "connection broken".to_owned(),
            Failure::ServerError(status) => format!("5xx {status}"),
            Failure::UnexpectedStatus(status) => format!("unexpected {status}"),
        }
    }
}

/// What one request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success(u16),
    /// A non-2xx the contract gives for this call (see [`Endpoint`]).
    Expected(u16),
    /// payments' 503: Stripe unreachable (expected while Stripe is faulted).
    StripeUnavailable,
    Failed(Failure),
}

/// One request: what, when, and how it ended.
#[derive(Debug, Clone)]
pub struct RequestLog {
    pub endpoint: Endpoint,
    pub started: Instant,
    pub finished: Instant,
    pub outcome: Outcome,
    /// For failures: the error or the start of the body.
    pub detail: String,
}

/// A user the workload signed up, with its cookie jar.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub seller: bool,
    pub client: Client,
}

/// A ticket a seller listed.
#[derive(Debug, Clone)]
pub struct ListedTicket {
    pub id: String,
    pub seller: usize,
    pub title: String,
    pub price_cents: u64,
    pub listed_at: Instant,
    /// How long after the 201 the orders service knew it (first `POST /api/orders`
    /// answer other than 404), when a buyer watched it from its listing on.
    pub known_to_orders_after: Option<Duration>,
}

/// What a buyer means to do with an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Intent {
    Pay,
    /// Let the lock expire.
    Abandon,
    Cancel,
    /// Pay around the end of the lock window (just before or just after).
    PayAtDeadline,
    /// Cancel and pay in the same instant.
    CancelAndPay,
}

/// An order a buyer placed (201), and what the buyer did with it.
#[derive(Debug, Clone)]
pub struct PlacedOrder {
    pub id: String,
    pub ticket_id: String,
    pub buyer: usize,
    pub intent: Intent,
    pub placed_at: Instant,
    /// The buyer sent `DELETE` and did not get a clear "no" (204, or no answer).
    pub cancel_may_have_happened: bool,
    /// `DELETE` answered 204.
    pub cancelled: bool,
    /// `POST /api/payments` answered 201.
    pub paid: bool,
}

/// A `POST /api/payments` that answered 201.
#[derive(Debug, Clone)]
pub struct Payment {
    pub id: String,
    pub order_id: String,
    pub stripe_id: String,
}

/// Everything a run did.
#[derive(Debug, Clone, Default)]
pub struct Record {
    pub users: Vec<User>,
    pub tickets: Vec<ListedTicket>,
    pub orders: Vec<PlacedOrder>,
    pub payments: Vec<Payment>,
    pub requests: Vec<RequestLog>,
    /// Journeys that got to their end (an order placed and acted on, or lost a race).
    pub journeys_completed: u64,
    /// Journeys cut short by failures or the request budget.
    pub journeys_failed: u64,
    /// Order attempts lost to another buyer (`Ticket is already reserved`).
    pub races_lost: u64,
    pub elapsed: Duration,
}

impl Record {
    /// The user whose id is `id`.
    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    /// The order `id` as placed, if this workload placed it (and saw the 201).
    pub fn order(&self, id: &str) -> Option<&PlacedOrder> {
        self.orders.iter().find(|o| o.id == id)
    }

    /// Ticket → orders propagation delays measured.
    pub fn propagation(&self) -> Vec<Duration> {
        let mut delays: Vec<Duration> = self
            .tickets
            .iter()
            .filter_map(|t| t.known_to_orders_after)
            .collect();
        delays.sort();
        delays
    }

    /// The failed requests.
    pub fn failures(&self) -> impl Iterator<Item = (&RequestLog, Failure)> {
        self.requests.iter().filter_map(|r| match r.outcome {
            Outcome::Failed(failure) => Some((r, failure)),
            _ => None,
        })
    }

    /// How many requests ended as `Outcome::StripeUnavailable`.
    pub fn stripe_unavailable(&self) -> usize {
        self.requests
            .iter()
            .filter(|r| r.outcome == Outcome::StripeUnavailable)
            .count()
    }
}

/// The `q`-th quantile (0.0–1.0) of sorted `values`.
pub fn quantile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    Some(sorted[rank.min(sorted.len() - 1)])
}

/// Runs the workload against `base_url` (e.g. `http://127.0.0.1:3000`).
pub async fn run(base_url: &str, config: &Config) -> Record {
    let start = Instant::now();
    let (listings_tx, listings_rx) = tokio::sync::mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        base_url: base_url.trim_end_matches('/').to_owned(),
        config: config.clone(),
        start,
        budget: AtomicI64::new(config.max_requests as i64),
        record: Mutex::new(Record::default()),
        listings: listings_tx,
        fresh: tokio::sync::Mutex::new(listings_rx),
        emails: AtomicU64::new(0),
    });
    let mut actors = tokio::task::JoinSet::new();
    for n in 0..config.sellers {
        let rng = Rng::new(config.seed ^ (n as u64 + 1).wrapping_mul(0x9e37_79b9));
        actors.spawn(seller(shared.clone(), rng));
    }
    for n in 0..config.buyers {
        let rng = Rng::new(config.seed ^ (n as u64 + 1).wrapping_mul(0x85eb_ca6b));
        actors.spawn(buyer(shared.clone(), rng));
    }
    while let Some(done) = actors.join_next().await {
        if let Err(err) = done {
            panic!("a workload actor panicked: {err}");
        }
    }
    let mut record = std::mem::take(&mut *shared.record.lock().unwrap());
    record.elapsed = start.elapsed();
    record
}

/// State shared by the actors of one run.
struct Shared {
    base_url: String,
    config: Config,
    start: Instant,
    budget: AtomicI64,
    record: Mutex<Record>,
    /// Each listing (its index in the record, when it was listed), handed to a buyer
    /// waiting for the next one (a fan watching the sellers).
    listings: tokio::sync::mpsc::UnboundedSender<(usize, Instant)>,
    fresh: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<(usize, Instant)>>,
    emails: AtomicU64,
}

/// An answer (`status` None: the request failed before one came).
struct Reply {
    status: Option<u16>,
    body: Value,
    outcome: Outcome,
}

impl Reply {
    fn is(&self, status: u16) -> bool {
        self.status == Some(status)
    }

    fn text(&self, field: &str) -> Option<String> {
        self.body[field].as_str().map(str::to_owned)
    }
}

impl Shared {
    /// Whether new journeys may start.
    fn open(&self) -> bool {
        self.start.elapsed() < self.config.duration && self.budget.load(Ordering::SeqCst) > 0
    }

    /// When everything must be over: journeys started before the end get a lock window
    /// and a few request timeouts to finish.
    fn hard_stop(&self) -> Instant {
        self.start
            + self.config.duration
            + self.config.lock_window
            + 3 * self.config.request_timeout
    }

    fn client(&self) -> Client {
        Client::builder()
            .cookie_store(true)
            .timeout(self.config.request_timeout)
            .connect_timeout(self.config.request_timeout)
            .build()
            .expect("http client")
    }

    /// Sends one request, recording it; `None` when the budget or the time is spent.
    async fn call(
        &self,
        client: &Client,
        endpoint: Endpoint,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Option<Reply> {
        if Instant::now() >= self.hard_stop() || self.budget.fetch_sub(1, Ordering::SeqCst) <= 0 {
            return None;
        }
        let mut request = client.request(method, format!("{}{path}", self.base_url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let started = Instant::now();
        let answer = match request.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                resp.text().await.map(|text| (status, text))
            }
            Err(err) => Err(err),
        };
        let finished = Instant::now();
        let (reply, detail) = match answer {
            Ok((status, text)) => {
                let outcome = classify(endpoint, status);
                let detail = match outcome {
                    Outcome::Failed(_) => text.chars().take(200).collect(),
                    _ => String::new(),
                };
                let body = serde_json::from_str(&text).unwrap_or(Value::Null);
                let reply = Reply {
                    status: Some(status),
                    body,
                    outcome,
                };
                (reply, detail)
            }
            Err(err) => {
                let failure = if err.is_timeout() {
                    Failure::Timeout
                } else if err.is_connect() {
                    Failure::Connect
                } else {
                    Failure::Broken
                };
                let reply = Reply {
                    status: None,
                    body: Value::Null,
                    outcome: Outcome::Failed(failure),
                };
                (reply, format!("{err:#}"))
            }
        };
        self.record.lock().unwrap().requests.push(RequestLog {
            endpoint,
            started,
            finished,
            outcome: reply.outcome,
            detail,
        });
        Some(reply)
    }

    /// Signs a new user up (signing in when a retried signup finds the email taken);
    /// returns the user's index in the record.
    async fn join(&self, seller: bool) -> Option<usize> {
        let n = self.emails.fetch_add(1, Ordering::SeqCst);
        let role = if seller { "seller" } else { "buyer" };
        let email = format!("{role}-{n}-{}@example.com", self.config.seed % 100_000);
        let credentials = json!({"email": email, "password": "password"});
        let client = self.client();
        let mut endpoint = Endpoint::SignUp;
        let id = loop {
            let path = match endpoint {
                Endpoint::SignUp => "/api/users/signup",
                _ => "/api/users/signin",
            };
            let reply = self
                .call(
                    &client,
                    endpoint,
                    Method::POST,
                    path,
                    Some(credentials.clone()),
                )
                .await?;
            if let (Some(200 | 201), Some(id)) = (reply.status, reply.text("id")) {
                break id;
            }
            if reply.is(400) {
                endpoint = Endpoint::SignIn;
            }
            if !self.open() {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let mut record = self.record.lock().unwrap();
        record.users.push(User {
            id,
            email,
            seller,
            client,
        });
        Some(record.users.len() - 1)
    }
}

fn classify(endpoint: Endpoint, status: u16) -> Outcome {
    match status {
        200..=299 => Outcome::Success(status),
        503 if endpoint == Endpoint::Pay => Outcome::StripeUnavailable,
        500..=599 => Outcome::Failed(Failure::ServerError(status)),
        _ if endpoint.expects(status) => Outcome::Expected(status),
        _ => Outcome::Failed(Failure::UnexpectedStatus(status)),
    }
}

const WORDS: &[&str] = &["Concert", "Opera", "Derby", "Festival", "Ballet", "Final"];

/// Lists tickets until the run ends, a second or two apart.
async fn seller(shared: Arc<Shared>, mut rng: Rng) {
    let Some(me) = shared.join(true).await else {
        return;
    };
    let client = shared.record.lock().unwrap().users[me].client.clone();
    let mut listed = 0u64;
    while shared.open() {
        let word = WORDS[rng.below(WORDS.len() as u64) as usize];
        let title = format!("{word} {me}-{listed}");
        let price_cents = 500 + rng.below(20_000);
        let price = price_cents as f64 / 100.0;
        let body = json!({"title": title, "price": price});
        let Some(reply) = shared
            .call(
                &client,
                Endpoint::ListTicket,
                Method::POST,
                "/api/tickets",
                Some(body),
            )
            .await
        else {
            return;
        };
        if let (true, Some(id)) = (reply.is(201), reply.text("id")) {
            listed += 1;
            let listed_at = Instant::now();
            let mut record = shared.record.lock().unwrap();
            record.tickets.push(ListedTicket {
                id,
                seller: me,
                title,
                price_cents,
                listed_at,
                known_to_orders_after: None,
            });
            let _ = shared.listings.send((record.tickets.len() - 1, listed_at));
        }
        think(&mut rng, 800, 2000).await;
    }
}

/// Runs journeys until the run ends.
async fn buyer(shared: Arc<Shared>, mut rng: Rng) {
    let Some(me) = shared.join(false).await else {
        return;
    };
    let client = shared.record.lock().unwrap().users[me].client.clone();
    let journey = Journey {
        shared: &shared,
        client: &client,
        me,
    };
    while shared.open() {
        match journey.find(&mut rng).await {
            Some(found) => journey.run(found, &mut rng).await,
            None => think(&mut rng, 100, 300).await,
        }
    }
}

/// A ticket a buyer found: its id, and, for a fresh listing it watched, its index in
/// the record and when it was listed.
struct Found {
    ticket_id: String,
    fresh: Option<(usize, Instant)>,
}

/// How a journey ended.
enum End {
    Completed,
    LostRace,
    Failed,
}

struct Journey<'a> {
    shared: &'a Shared,
    client: &'a Client,
    me: usize,
}

impl Journey<'_> {
    /// A ticket to try: the next listing (a fan watching the sellers), one of the
    /// newest in the list, or a search hit.
    async fn find(&self, rng: &mut Rng) -> Option<Found> {
        let roll = rng.below(100);
        if roll < 40
            && let Some(found) = self.next_listing().await
        {
            return Some(found);
        }
        let (endpoint, path) = if roll < 75 {
            (Endpoint::BrowseTickets, "/api/tickets?limit=20".to_owned())
        } else {
            let word = WORDS[rng.below(WORDS.len() as u64) as usize];
            let prefix = word[..4].to_lowercase();
            (Endpoint::Search, format!("/api/search?q={prefix}&limit=20"))
        };
        let reply = self
            .shared
            .call(self.client, endpoint, Method::GET, &path, None)
            .await?;
        let ids: Vec<String> = reply
            .body
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|t| t["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        // The first few, so buyers collide.
        let pick = ids.len().min(5);
        (pick > 0).then(|| Found {
            ticket_id: ids[rng.below(pick as u64) as usize].clone(),
            fresh: None,
        })
    }

    /// Waits a moment for the next listing. One handed over as it was listed is watched
    /// from its listing on: how long orders takes to know it is measured.
    async fn next_listing(&self) -> Option<Found> {
        let next = async { self.shared.fresh.lock().await.recv().await };
        let (index, listed_at) = tokio::time::timeout(Duration::from_millis(1500), next)
            .await
            .ok()
            .flatten()?;
        let ticket_id = self.shared.record.lock().unwrap().tickets[index].id.clone();
        let watched = listed_at.elapsed() < Duration::from_millis(20);
        Some(Found {
            ticket_id,
            fresh: watched.then_some((index, listed_at)),
        })
    }

    async fn run(&self, found: Found, rng: &mut Rng) {
        let end = match self.order(&found).await {
            Ok(Some((order_id, placed_at))) => {
                let intent = match rng.below(100) {
                    0..=39 => Intent::Pay,
                    40..=54 => Intent::Abandon,
                    55..=69 => Intent::Cancel,
                    70..=84 => Intent::PayAtDeadline,
                    _ => Intent::CancelAndPay,
                };
                let index = {
                    let mut record = self.shared.record.lock().unwrap();
                    record.orders.push(PlacedOrder {
                        id: order_id.clone(),
                        ticket_id: found.ticket_id.clone(),
                        buyer: self.me,
                        intent,
                        placed_at,
                        cancel_may_have_happened: false,
                        cancelled: false,
                        paid: false,
                    });
                    record.orders.len() - 1
                };
                self.act(index, &order_id, intent, placed_at, rng).await
            }
            Ok(None) => End::LostRace,
            Err(()) => End::Failed,
        };
        let mut record = self.shared.record.lock().unwrap();
        match end {
            End::Completed => record.journeys_completed += 1,
            End::LostRace => {
                record.journeys_completed += 1;
                record.races_lost += 1;
            }
            End::Failed => record.journeys_failed += 1,
        }
    }

    /// Orders the ticket, retrying while orders has not heard of it (404). `Ok(None)`:
    /// another buyer holds it. A fresh listing's first answer other than 404 measures
    /// how long `ticket:created` took to reach orders.
    async fn order(&self, found: &Found) -> Result<Option<(String, Instant)>, ()> {
        let body = json!({"ticketId": found.ticket_id});
        let give_up = Instant::now() + Duration::from_secs(10);
        // Fine-grained at first (it measures propagation), then backing off.
        let mut poll = Duration::from_millis(10);
        loop {
            let sent = Instant::now();
            let reply = self
                .shared
                .call(
                    self.client,
                    Endpoint::PlaceOrder,
                    Method::POST,
                    "/api/orders",
                    Some(body.clone()),
                )
                .await
                .ok_or(())?;
            let known = reply.status.is_some_and(|s| s != 404);
            if let (true, Some((index, listed_at))) = (known, found.fresh) {
                let mut record = self.shared.record.lock().unwrap();
                record.tickets[index].known_to_orders_after = Some(sent - listed_at);
            }
            match reply.status {
                Some(201) => return reply.text("id").map(|id| Some((id, sent))).ok_or(()),
                Some(400) => return Ok(None),
                Some(404) if Instant::now() < give_up => {
                    tokio::time::sleep(poll).await;
                    poll = (poll * 2).min(Duration::from_millis(200));
                }
                _ => return Err(()),
            }
        }
    }

    /// Does what the buyer means to do with order `index`.
    async fn act(
        &self,
        index: usize,
        order_id: &str,
        intent: Intent,
        placed_at: Instant,
        rng: &mut Rng,
    ) -> End {
        let lock = self.shared.config.lock_window;
        match intent {
            Intent::Pay => {
                think(rng, 0, 500).await;
                self.pay(index, order_id).await
            }
            Intent::Abandon => End::Completed,
            Intent::Cancel => {
                think(rng, 0, 500).await;
                self.cancel(index, order_id).await
            }
            Intent::PayAtDeadline => {
                // From 300 ms before to 200 ms after the end of the window.
                let offset = Duration::from_millis(rng.below(500));
                let at = (placed_at + lock + offset)
                    .checked_sub(Duration::from_millis(300))
                    .unwrap_or(placed_at);
                tokio::time::sleep_until(at.into()).await;
                self.pay(index, order_id).await
            }
            Intent::CancelAndPay => {
                think(rng, 0, 300).await;
                let (cancelled, paid) =
                    tokio::join!(self.cancel(index, order_id), self.pay(index, order_id));
                match (cancelled, paid) {
                    (End::Completed, End::Completed) => End::Completed,
                    _ => End::Failed,
                }
            }
        }
    }

    /// Pays with the test card, again while Stripe is unavailable (503) or the request
    /// failed, as a user would (the idempotency key makes a retry safe).
    async fn pay(&self, index: usize, order_id: &str) -> End {
        let body = json!({"orderId": order_id, "token": "pm_card_visa"});
        for attempt in 0..4 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            let Some(reply) = self
                .shared
                .call(
                    self.client,
                    Endpoint::Pay,
                    Method::POST,
                    "/api/payments",
                    Some(body.clone()),
                )
                .await
            else {
                return End::Failed;
            };
            match reply.outcome {
                Outcome::Success(_) => {
                    let mut record = self.shared.record.lock().unwrap();
                    record.orders[index].paid = true;
                    record.payments.push(Payment {
                        id: reply.text("id").unwrap_or_default(),
                        order_id: order_id.to_owned(),
                        stripe_id: reply.text("stripeId").unwrap_or_default(),
                    });
                    return End::Completed;
                }
                Outcome::Expected(_) => return End::Completed,
                Outcome::StripeUnavailable | Outcome::Failed(_) => {}
            }
        }
        End::Failed
    }

    /// Cancels (`DELETE /api/orders/:id`).
    async fn cancel(&self, index: usize, order_id: &str) -> End {
        let path = format!("/api/orders/{order_id}");
        let reply = self
            .shared
            .call(self.client, Endpoint::Cancel, Method::DELETE, &path, None)
            .await;
        let status = reply.as_ref().and_then(|r| r.status);
        {
            let mut record = self.shared.record.lock().unwrap();
            let order = &mut record.orders[index];
            order.cancelled = status == Some(204);
            // Sent and not clearly refused: it may have gone through.
            order.cancel_may_have_happened = reply.is_some() && !matches!(status, Some(400..=499));
        }
        match status {
            Some(204 | 400) => End::Completed,
            _ => End::Failed,
        }
    }
}

/// A pause of `min_ms`–`max_ms`: a user's think time.
async fn think(rng: &mut Rng, min_ms: u64, max_ms: u64) {
    let ms = min_ms + rng.below(max_ms - min_ms + 1);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// splitmix64: reproducible choices from a seed, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
