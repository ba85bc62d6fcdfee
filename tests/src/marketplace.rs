//! The marketplace app as a user sees it: the repo's spin.toml (or the same app pulled
//! from a registry with `--from`) served by `tessera up` against a private Redis, with
//! typed helpers for the HTTP API.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

use crate::harness::{LocalStripe, RedisServer, TcpSwitch, TesseraUp, workspace_root};

/// The secret tests sign session cookies with (to forge and tamper with tokens).
pub const JWT_SECRET: &str = "test-secret-for-black-box-tests";

/// The webhook signing secret the tests configure.
pub const STRIPE_WEBHOOK_SECRET: &str = "whsec_test_black_box";

/// A running marketplace with its own Redis, localstripe and state directory.
pub struct Marketplace {
    pub app: TesseraUp,
    pub redis: RedisServer,
    pub stripe: LocalStripe,
    /// Between the app and `stripe`, when [`Setup::stripe_switch`] asked for one.
    pub stripe_switch: Option<TcpSwitch>,
    env: Vec<(String, String)>,
    state: tempfile::TempDir,
    source: Source,
    /// Holds the edited manifest of [`Setup::held`].
    _manifest_dir: Option<tempfile::TempDir>,
}

/// How a test wants the marketplace, beyond the defaults.
#[derive(Default)]
pub struct Setup<'a> {
    /// Extra `SPIN_VARIABLE_*`-style environment (overrides the defaults).
    pub env: &'a [(&'a str, &'a str)],
    /// `(component, channel)` subscriptions of spin.toml moved to `held:<channel>`, so
    /// that the component sees those events only when the test hands them over
    /// ([`Marketplace::deliver_held`]): a consumer held back on purpose, to make a race
    /// happen.
    pub held: &'a [(&'a str, &'a str)],
    /// Reach Stripe through a [`TcpSwitch`], to take it down and bring it back.
    pub stripe_switch: bool,
}

/// Where `tessera up` gets the app.
#[derive(Clone)]
enum Source {
    /// The repo's spin.toml, or an edited copy of it.
    Manifest(std::path::PathBuf),
    /// `--from REFERENCE --insecure`, run in the (otherwise empty) state directory with
    /// this registry cache.
    Registry { reference: String, cache: String },
}

impl Marketplace {
    pub fn start() -> Marketplace {
        Self::start_with(&[])
    }

    /// Starts the app with extra `SPIN_VARIABLE_*`-style environment.
    pub fn start_with(env: &[(&str, &str)]) -> Marketplace {
        Self::start_setup(Setup {
            env,
            ..Setup::default()
        })
    }

    /// The manifest the app starts from: the repository's `spin.toml`, or
    /// `TESSERA_MANIFEST`, through which benchmarks compare another build of the app.
    pub fn manifest() -> std::path::PathBuf {
        std::env::var_os("TESSERA_MANIFEST")
            .map_or_else(|| workspace_root().join("spin.toml"), Into::into)
    }

    /// Starts the app as `setup` says.
    pub fn start_setup(setup: Setup<'_>) -> Marketplace {
        if setup.held.is_empty() {
            let manifest = Source::Manifest(Self::manifest());
            return Self::start_source(manifest, setup.env, setup.stripe_switch);
        }
        let (dir, manifest) = held_manifest(setup.held);
        let mut market =
            Self::start_source(Source::Manifest(manifest), setup.env, setup.stripe_switch);
        market._manifest_dir = Some(dir);
        market
    }

    /// Hands `payload` to the components whose `channel` subscription is held
    /// ([`Setup::held`]).
    pub fn deliver_held(&self, channel: &str, payload: &str) {
        self.redis.publish(&format!("held:{channel}"), payload);
    }

    /// Takes Stripe down (`false`) or brings it back (`true`); needs
    /// [`Setup::stripe_switch`].
    pub fn set_stripe_up(&self, up: bool) {
        self.stripe_switch
            .as_ref()
            .expect("started with Setup { stripe_switch: true, .. }")
            .set_open(up);
    }

    /// Starts the app pulled from a plain-HTTP registry (`tessera up --from reference
    /// --insecure`) in an empty directory, with the blob cache at `cache_dir`.
    pub fn start_from_registry(reference: &str, cache_dir: &std::path::Path) -> Marketplace {
        let source = Source::Registry {
            reference: reference.to_owned(),
            cache: cache_dir.display().to_string(),
        };
        Self::start_source(source, &[], false)
    }

    /// The directory `tessera up` keeps its state in.
    pub fn state_dir(&self) -> &std::path::Path {
        self.state.path()
    }

    fn start_source(source: Source, env: &[(&str, &str)], stripe_switch: bool) -> Marketplace {
        let redis = RedisServer::start();
        let stripe = LocalStripe::start();
        let stripe_js = format!("{}/js.stripe.com/v3/", stripe.base_url());
        let stripe_switch = stripe_switch.then(|| TcpSwitch::start(stripe.port));
        let stripe_base = match &stripe_switch {
            Some(switch) => format!("http://127.0.0.1:{}", switch.port),
            None => stripe.base_url(),
        };
        let vars: Vec<(String, String)> = app_env(&redis.address(), &stripe_base, &stripe_js)
            .into_iter()
            .chain(env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .collect();
        // Later entries (the caller's) override earlier ones when the process starts.
        let state = tempfile::tempdir().expect("state dir");
        let app = spawn_app(&source, &vars, state.path());
        Marketplace {
            app,
            redis,
            stripe,
            stripe_switch,
            env: vars,
            state,
            source,
            _manifest_dir: None,
        }
    }

    /// Stops the app and starts it again on the same data, Redis and Stripe.
    pub fn restart(&mut self) {
        self.app.stop();
        self.app = spawn_app(&self.source, &self.env, self.state.path());
    }

    pub fn url(&self, path: &str) -> String {
        self.app.url(path)
    }

    /// A browser-like client: it keeps the session cookie between requests.
    pub fn client(&self) -> Client {
        Client::builder()
            .cookie_store(true)
            .build()
            .expect("http client")
    }

    pub async fn post(&self, client: &Client, path: &str, body: Value) -> Response {
        client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn get(&self, client: &Client, path: &str) -> Response {
        client.get(self.url(path)).send().await.expect("GET")
    }

    /// Signs up a new user on `client`, asserting success; returns the user's id.
    pub async fn sign_up(&self, client: &Client, email: &str) -> String {
        let resp = self
            .post(
                client,
                "/api/users/signup",
                json!({"email": email, "password": "password"}),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED, "signup {email}");
        body(resp).await["id"].as_str().expect("user id").to_owned()
    }
}

/// The components whose message handlers `scripts/run_app.sh` (the README's run command)
/// and the benchmarks run in reused instances (`tessera up --reuse-instances`): the
/// Python and TypeScript services, whose fresh instances cost milliseconds each. Like
/// those scripts, the tests take `TESSERA_REUSE_INSTANCES` from their own environment
/// when it is set (empty: a fresh instance for every message, as for a manifest
/// without these components).
pub const REUSED_COMPONENTS: &str = "activity,search";

/// The environment the tests run the app with: `SPIN_VARIABLE_*` for Redis, Stripe (at
/// `stripe_base`, its Stripe.js at `stripe_js`), the session secret, and cheap password
/// hashing; the instance reuse the run command sets. Later entries of an environment
/// list override earlier ones.
pub fn app_env(redis_address: &str, stripe_base: &str, stripe_js: &str) -> Vec<(String, String)> {
    let reuse = std::env::var("TESSERA_REUSE_INSTANCES");
    [
        (
            "TESSERA_REUSE_INSTANCES",
            reuse.as_deref().unwrap_or(REUSED_COMPONENTS),
        ),
        ("SPIN_VARIABLE_JWT_SECRET", JWT_SECRET),
        ("SPIN_VARIABLE_REDIS_ADDRESS", redis_address),
        // Cheap hashing keeps the suite fast; the production cost is the default.
        ("SPIN_VARIABLE_ARGON2_MEMORY_KIB", "64"),
        ("SPIN_VARIABLE_ARGON2_ITERATIONS", "1"),
        ("SPIN_VARIABLE_STRIPE_API_BASE", stripe_base),
        ("SPIN_VARIABLE_STRIPE_SECRET_KEY", crate::stripe::SECRET_KEY),
        ("SPIN_VARIABLE_STRIPE_PUBLISHABLE_KEY", "pk_test_black_box"),
        ("SPIN_VARIABLE_STRIPE_WEBHOOK_SECRET", STRIPE_WEBHOOK_SECRET),
        ("SPIN_VARIABLE_STRIPE_JS_URL", stripe_js),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn spawn_app(source: &Source, vars: &[(String, String)], state: &std::path::Path) -> TesseraUp {
    // `tessera up` keeps compiled components in its state directory, and every test has
    // its own: without help each would compile every component again (the Python and
    // TypeScript ones take tens of seconds each). So the first start of this process
    // compiles, or takes from the shared cache of earlier runs, while the others wait; then
    // every start begins with the shared compiled code linked into its state directory.
    let cache = match source {
        Source::Manifest(_) => state.join("cache"),
        Source::Registry { .. } => state.join(".spin/cache"),
    };
    let shared = shared_compile_cache();
    let warming = (!WARM.load(Ordering::SeqCst)).then(|| {
        let guard = WARMING.lock().unwrap_or_else(|e| e.into_inner());
        (!WARM.load(Ordering::SeqCst)).then_some(guard)
    });
    link_files(&shared, &cache);
    let app = spawn_tessera(source, vars, state);
    // `tessera up` serves HTTP while its Redis subscriber is still connecting; an event
    // published before it has subscribed would be lost (pub/sub keeps nothing), so tests
    // start once it has. It logs every channel after subscribing to all of them.
    assert!(
        app.wait_for_log("Subscribed to ", std::time::Duration::from_secs(30)),
        "tessera did not subscribe to Redis:\n{}",
        app.logs()
    );
    link_files(&cache, &shared);
    WARM.store(true, Ordering::SeqCst);
    drop(warming);
    app
}

/// Whether an app of this process has started (so the shared compile cache is warm).
static WARM: AtomicBool = AtomicBool::new(false);
/// Held by the first start while it compiles.
static WARMING: Mutex<()> = Mutex::new(());

/// Compiled components shared by the apps the tests start, across runs: files named by
/// the wasm's digest and the engine's settings, written atomically by `tessera`.
pub(crate) fn shared_compile_cache() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), std::path::PathBuf::from);
    target.join("blackbox-compile-cache")
}

/// Hard-links (or copies) every file of `from` that `to` lacks into `to`.
pub(crate) fn link_files(from: &std::path::Path, to: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(from) else {
        return;
    };
    std::fs::create_dir_all(to).expect("compile cache dir");
    for entry in entries.flatten() {
        let name = entry.file_name();
        // Skip temporary files of a write in progress.
        if !name.to_string_lossy().ends_with(".cwasm") {
            continue;
        }
        let target = to.join(&name);
        if target.exists() {
            continue;
        }
        if std::fs::hard_link(entry.path(), &target).is_err() {
            let partial = to.join(format!(".{}.part", name.to_string_lossy()));
            if std::fs::copy(entry.path(), &partial).is_ok() {
                let _ = std::fs::rename(&partial, &target);
            }
        }
    }
}

fn spawn_tessera(source: &Source, vars: &[(String, String)], state: &std::path::Path) -> TesseraUp {
    let root = workspace_root();
    let rc = root.join("runtime-config.toml").display().to_string();
    let env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    match source {
        Source::Manifest(manifest) => {
            TesseraUp::spawn_with_state(manifest, &["--runtime-config-file", &rc], &env, state)
        }
        Source::Registry { reference, cache } => TesseraUp::spawn_from_registry(
            reference,
            state,
            &[
                "--runtime-config-file",
                &rc,
                "--insecure",
                "--cache-dir",
                cache,
            ],
            &env,
        ),
    }
}

/// A copy of spin.toml, in a new directory, whose `held` `(component, channel)`
/// subscriptions listen on `held:<channel>` instead; its paths point at the checkout.
fn held_manifest(held: &[(&str, &str)]) -> (tempfile::TempDir, std::path::PathBuf) {
    let root = workspace_root();
    let mut text = std::fs::read_to_string(root.join("spin.toml")).expect("read spin.toml");
    for (component, channel) in held {
        let from = format!("channel = \"{channel}\"\ncomponent = \"{component}\"");
        assert!(
            text.contains(&from),
            "spin.toml has no [[trigger.redis]] of {component} on {channel}"
        );
        let to = format!("channel = \"held:{channel}\"\ncomponent = \"{component}\"");
        text = text.replace(&from, &to);
    }
    // Sources are relative to the manifest's directory.
    let root = root.display();
    text = text
        .replace("source = \"target/", &format!("source = \"{root}/target/"))
        .replace("source = \"client/", &format!("source = \"{root}/client/"));
    let dir = tempfile::tempdir().expect("manifest dir");
    let manifest = dir.path().join("spin.toml");
    std::fs::write(&manifest, text).expect("write the held manifest");
    (dir, manifest)
}

/// The JSON body of a response.
pub async fn body(resp: Response) -> Value {
    let text = resp.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts that exactly one of concurrent attempts got 201 and every other one a 400
/// whose only message is `loser_message`.
pub fn assert_one_winner(results: &[(StatusCode, Value)], loser_message: &str) {
    let winners = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(winners, 1, "exactly one attempt wins: {results:?}");
    for (status, errors) in results.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_eq!(*status, StatusCode::BAD_REQUEST);
        assert_eq!(messages(errors), [loser_message]);
    }
}

/// The messages of an error body, in order.
pub fn messages(error_body: &Value) -> Vec<String> {
    error_body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["message"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `check` until it returns `Some` or `deadline` passes (then panics with `what`).
pub async fn eventually<T, F, Fut>(what: &str, deadline: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// A CloudEvents envelope as the services publish it (see wit/README.md), for tests that
/// publish straight onto the channels.
pub fn envelope(channel: &str, data: Value) -> String {
    json!({
        "specversion": "1.0",
        "id": format!("test-{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)),
        "type": channel,
        "source": "/tessera/tests",
        "time": "2026-11-24T10:00:00Z",
        "datacontenttype": "application/json",
        "data": data,
    })
    .to_string()
}

impl Marketplace {
    /// Lists a ticket as the signed-in `client`, asserting 201.
    pub async fn sell(&self, client: &Client, title: &str, price: f64) -> Value {
        let resp = self
            .post(
                client,
                "/api/tickets",
                json!({"title": title, "price": price}),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED, "create ticket");
        body(resp).await
    }

    /// [`Self::sell`], answering the new ticket's id.
    pub async fn sell_id(&self, client: &Client, title: &str, price: f64) -> String {
        let ticket = self.sell(client, title, price).await;
        ticket["id"].as_str().expect("ticket id").to_owned()
    }

    /// Asserts that each `(method, path)` is answered with the marketplace's JSON 404.
    pub async fn assert_json_404s(&self, client: &Client, cases: &[(reqwest::Method, &str)]) {
        for (method, path) in cases {
            let resp = client
                .request(method.clone(), self.url(path))
                .send()
                .await
                .expect("request");
            assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{method} {path}");
            assert_eq!(
                body(resp).await,
                json!({"errors": [{"message": "Not Found"}]}),
                "{method} {path}"
            );
        }
    }

    /// A seller lists a ticket at `price`; a buyer orders it (201). Emails are derived
    /// from the price, so one app can hold several deals at different prices.
    pub async fn ordered_ticket(&self, price: f64) -> Deal {
        let tag = price.to_string().replace('.', "-");
        let seller = self.client();
        self.sign_up(&seller, &format!("seller-{tag}@example.com"))
            .await;
        let ticket_id = self.sell_id(&seller, "Concert", price).await;
        let buyer = self.client();
        self.sign_up(&buyer, &format!("buyer-{tag}@example.com"))
            .await;
        let (status, order) = self.order_when_known(&buyer, &ticket_id).await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        let order_id = order["id"].as_str().expect("order id").to_owned();
        Deal {
            buyer,
            ticket_id,
            order_id,
        }
    }

    /// The propagation benchmarks' pause before each round (`PAUSE_MS`, default none).
    /// Back to back, a round's ticket competes for the CPU with the previous round's
    /// order, whose event starts five consumers: that measures the app saturated. Spaced
    /// rounds (e.g. `PAUSE_MS=60`) measure one purchase on a quiet app.
    pub fn pause_between_rounds() -> std::time::Duration {
        let millis = std::env::var("PAUSE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        std::time::Duration::from_millis(millis)
    }

    /// Lists a few tickets and orders each, untimed, before a benchmark's rounds: the
    /// first event through each service creates its database and schema, a one-time cost
    /// that is not propagation.
    pub async fn warm_up_propagation(&self, seller: &Client, buyer: &Client) {
        for i in 0..5 {
            self.list_then_order(seller, buyer, &format!("Warm-up {i}"))
                .await;
        }
    }

    /// One round of the propagation benchmarks: `seller` lists a ticket titled `title`
    /// and `buyer` orders it the moment orders knows it.
    pub async fn list_then_order(&self, seller: &Client, buyer: &Client, title: &str) {
        let ticket = self
            .post(seller, "/api/tickets", json!({"title": title, "price": 10}))
            .await;
        assert_eq!(ticket.status(), StatusCode::CREATED);
        let id = body(ticket).await["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.order_the_moment_known(buyer, &id).await;
    }

    /// Orders `ticket_id` the moment orders knows it: retries a 404 every 200 µs, so that
    /// the benchmarks' propagation figures are not the polling's. Panics on any other
    /// answer, or when the ticket is still unknown after 10 s.
    pub async fn order_the_moment_known(&self, buyer: &Client, ticket_id: &str) {
        self.order_the_moment_known_in_trace(buyer, ticket_id, None)
            .await;
    }

    /// [`Self::order_the_moment_known`], each attempt sent with `traceparent` when given,
    /// so that its spans join that trace.
    pub async fn order_the_moment_known_in_trace(
        &self,
        buyer: &Client,
        ticket_id: &str,
        traceparent: Option<&str>,
    ) {
        let started = std::time::Instant::now();
        loop {
            let mut request = buyer
                .post(self.url("/api/orders"))
                .json(&json!({"ticketId": ticket_id}));
            if let Some(traceparent) = traceparent {
                request = request.header("traceparent", traceparent);
            }
            let resp = request.send().await.expect("POST /api/orders");
            if resp.status() == StatusCode::CREATED {
                return;
            }
            assert_eq!(resp.status(), StatusCode::NOT_FOUND, "unexpected answer");
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "ticket {ticket_id} never reached orders"
            );
            // Not `tokio::time::sleep`: tokio's timer ticks in whole milliseconds, so a
            // 200 µs sleep lasted until the next tick (0.2–1.2 ms), and that wait showed
            // up in the benchmarks as propagation. A blocking thread keeps the 200 µs.
            let pause = std::time::Duration::from_micros(200);
            let _ = tokio::task::spawn_blocking(move || std::thread::sleep(pause)).await;
        }
    }

    /// Orders `ticket_id`, retrying while the orders service has not yet heard of the
    /// ticket (404): events are asynchronous.
    pub async fn order_when_known(&self, client: &Client, ticket_id: &str) -> (StatusCode, Value) {
        eventually(
            "the ticket to reach the orders service",
            std::time::Duration::from_secs(10),
            || async {
                let resp = self
                    .post(client, "/api/orders", json!({"ticketId": ticket_id}))
                    .await;
                let status = resp.status();
                if status == StatusCode::NOT_FOUND {
                    return None;
                }
                Some((status, body(resp).await))
            },
        )
        .await
    }
}

impl Marketplace {
    /// `POST /api/payments {orderId, token?}` as `buyer`; the status and JSON body.
    pub async fn pay(
        &self,
        buyer: &Client,
        order_id: &str,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = json!({"orderId": order_id});
        if let Some(token) = token {
            request["token"] = json!(token);
        }
        let resp = self.post(buyer, "/api/payments", request).await;
        let status = resp.status();
        (status, body(resp).await)
    }

    /// `DELETE /api/orders/:id` as `buyer`; the status.
    pub async fn cancel(&self, buyer: &Client, order_id: &str) -> StatusCode {
        buyer
            .delete(self.url(&format!("/api/orders/{order_id}")))
            .send()
            .await
            .expect("DELETE")
            .status()
    }

    /// PUT with a JSON body; returns the status and JSON body.
    pub async fn put_json(
        &self,
        client: &Client,
        path: &str,
        json_body: Value,
    ) -> (StatusCode, Value) {
        let resp = client
            .put(self.url(path))
            .json(&json_body)
            .send()
            .await
            .expect("PUT");
        let status = resp.status();
        (status, body(resp).await)
    }
}

/// A ticket a buyer has just ordered (see [`Marketplace::ordered_ticket`]).
pub struct Deal {
    /// The buyer's signed-in client.
    pub buyer: Client,
    pub ticket_id: String,
    pub order_id: String,
}
