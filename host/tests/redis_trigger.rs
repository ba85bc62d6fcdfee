//! The Redis trigger, outbound Redis and the dev Redis service, against real Redis.

use std::time::Duration;

use tessera_blackbox::{
    RedisServer, TesseraUp, free_port, port_answers, require_guest, wait_until, workspace_root,
};

fn manifest() -> std::path::PathBuf {
    workspace_root().join("host/tests/apps/redis/spin.toml")
}

fn start(redis_address: &str) -> TesseraUp {
    require_guest();
    let app = TesseraUp::spawn(
        &manifest(),
        &[],
        &[("SPIN_VARIABLE_REDIS_ADDRESS", redis_address)],
    );
    assert!(
        app.wait_for_log("Subscribed to", Duration::from_secs(10)),
        "never subscribed:\n{}",
        app.logs()
    );
    app
}

fn received(app: &TesseraUp) -> String {
    get(app, "/granted/redis/received").1
}

/// Every body received, as `body@n`: the message was its instance's n-th.
fn received_with_nth(app: &TesseraUp) -> String {
    get(app, "/granted/redis/received?nth").1
}

/// Publishes `body` and waits until the handler has finished with it (its log line,
/// which follows whatever the host does with the instance afterwards), so the next
/// message finds the instance parked if it was going to be.
fn deliver(redis: &RedisServer, app: &TesseraUp, body: &str) {
    let handled = |app: &TesseraUp| {
        app.logs()
            .matches("channel=conformance component=granted outcome=")
            .count()
    };
    let before = handled(app);
    redis.publish("conformance", body);
    assert!(
        wait_until(Duration::from_secs(10), || handled(app) > before),
        "{body} was never handled:\n{}",
        app.logs()
    );
}

fn get(app: &TesseraUp, path: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::get(app.url(path)).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

#[test]
fn messages_run_the_subscribed_component_once_each() {
    let redis = RedisServer::start();
    let app = start(&redis.address());
    redis.publish("conformance", "one");
    redis.publish("other-channel", "ignored");
    redis.publish("conformance", "two");
    // Messages run concurrently, so only the set (and count) is asserted, not the order.
    let sorted = || {
        let mut got: Vec<String> = received(&app).split(',').map(str::to_owned).collect();
        got.sort();
        got
    };
    assert!(
        wait_until(Duration::from_secs(10), || sorted() == ["one", "two"]),
        "got {:?}\n{}",
        sorted(),
        app.logs()
    );
}

#[test]
fn each_message_runs_in_a_fresh_instance_by_default() {
    let redis = RedisServer::start();
    let app = start(&redis.address());
    deliver(&redis, &app, "one");
    deliver(&redis, &app, "two");
    assert_eq!(received_with_nth(&app), "one@1,two@1", "{}", app.logs());
}

#[test]
fn a_reused_instance_takes_messages_in_turn_until_it_fails_or_keeps_a_connection() {
    require_guest();
    let redis = RedisServer::start();
    let app = TesseraUp::spawn(
        &manifest(),
        &["--reuse-instances", "granted"],
        &[("SPIN_VARIABLE_REDIS_ADDRESS", &redis.address())],
    );
    assert!(
        app.wait_for_log("Subscribed to", Duration::from_secs(10)),
        "{}",
        app.logs()
    );
    deliver(&redis, &app, "one");
    deliver(&redis, &app, "two");
    // A trapped instance is dropped: the next message starts afresh.
    deliver(&redis, &app, "trap");
    deliver(&redis, &app, "three");
    // So is one that returns with a connection open (it would keep a file open per
    // message), and the log says why.
    deliver(&redis, &app, "keep-open");
    deliver(&redis, &app, "four");
    deliver(&redis, &app, "five");
    assert_eq!(
        received_with_nth(&app),
        "one@1,two@2,three@1,keep-open@2,four@1,five@2",
        "{}",
        app.logs()
    );
    assert!(
        app.logs().contains("not reusing its instance"),
        "{}",
        app.logs()
    );
}

#[test]
fn a_trapping_message_is_logged_and_later_messages_still_run() {
    let redis = RedisServer::start();
    let app = start(&redis.address());
    redis.publish("conformance", "trap");
    assert!(
        app.wait_for_log("message handling failed", Duration::from_secs(10)),
        "{}",
        app.logs()
    );
    redis.publish("conformance", "after");
    assert!(
        wait_until(Duration::from_secs(10), || received(&app) == "after"),
        "{}",
        app.logs()
    );
    // The log line follows the handler's effect; wait for it rather than race it.
    assert!(
        app.wait_for_log(
            "channel=conformance component=granted",
            Duration::from_secs(5)
        ),
        "{}",
        app.logs()
    );
}

#[test]
fn outbound_publish_is_allowed_only_to_granted_addresses() {
    let redis = RedisServer::start();
    let app = start(&redis.address());
    assert_eq!(get(&app, "/granted/redis/publish/conformance/loop").0, 200);
    assert!(
        wait_until(Duration::from_secs(10), || received(&app) == "loop"),
        "{}",
        app.logs()
    );
    let (status, body) = get(&app, "/denied/redis/publish/conformance/nope");
    assert_eq!(status, 502);
    assert!(body.contains("InvalidAddress"), "{body}");
}

#[test]
fn subscriber_reconnects_after_redis_restarts() {
    let mut redis = RedisServer::start();
    let app = start(&redis.address());
    redis.stop();
    let (status, _) = get(&app, "/granted/redis/publish/conformance/while-down");
    assert_eq!(status, 502, "publishing while Redis is down fails cleanly");
    assert!(
        app.wait_for_log("reconnecting", Duration::from_secs(10)),
        "{}",
        app.logs()
    );
    redis.restart();
    // Messages published after the subscriber is back are delivered.
    assert!(
        wait_until(Duration::from_secs(20), || {
            redis.publish("conformance", "back");
            received(&app).contains("back")
        }),
        "{}",
        app.logs()
    );
}

#[test]
fn dev_redis_is_started_on_a_silent_loopback_port_and_stopped_on_exit() {
    let port = free_port();
    let address = format!("redis://127.0.0.1:{port}");
    let app = start(&address);
    assert!(
        app.logs()
            .contains(&format!("Started dev Redis at {address}")),
        "{}",
        app.logs()
    );
    let client = RedisServer::existing(port);
    client.publish("conformance", "via-dev-redis");
    assert!(
        wait_until(Duration::from_secs(10), || received(&app)
            == "via-dev-redis"),
        "{}",
        app.logs()
    );
    drop(app);
    assert!(
        wait_until(Duration::from_secs(5), || !port_answers(port)),
        "dev Redis still running after tessera exited"
    );
}

#[test]
fn shutdown_lets_a_running_handler_finish_before_dev_redis_stops() {
    // The app's own dev Redis: it is stopped on exit, right after the handlers drain.
    let port = free_port();
    let address = format!("redis://127.0.0.1:{port}");
    let state = tempfile::tempdir().unwrap();
    let env = [("SPIN_VARIABLE_REDIS_ADDRESS", address.as_str())];
    let mut app = TesseraUp::spawn_with_state(&manifest(), &[], &env, state.path());
    assert!(app.wait_for_log("Subscribed to", Duration::from_secs(10)));
    RedisServer::existing(port).publish("conformance", "slow-one");
    // The handler sleeps 1.5 s before it records the message; stop while it runs.
    assert!(app.wait_for_log("Subscribed to", Duration::from_secs(1)));
    let status = app.terminate();
    assert!(status.success(), "{status}\n{}", app.logs());
    assert!(
        app.logs().contains("component=granted outcome=\"ok\"")
            || app.logs().contains("component=granted outcome=ok"),
        "the handler did not finish:\n{}",
        app.logs()
    );
    let app = TesseraUp::spawn_with_state(&manifest(), &[], &env, state.path());
    assert_eq!(received(&app), "slow-one", "{}", app.logs());
}

#[test]
fn no_dev_services_leaves_a_silent_port_alone_and_subscribes_when_redis_comes() {
    require_guest();
    let port = free_port();
    let address = format!("redis://127.0.0.1:{port}");
    let app = TesseraUp::spawn(
        &manifest(),
        &["--no-dev-services"],
        &[("SPIN_VARIABLE_REDIS_ADDRESS", address.as_str())],
    );
    assert!(
        !port_answers(port),
        "a dev Redis was started:\n{}",
        app.logs()
    );
    assert!(!app.logs().contains("Started dev Redis"), "{}", app.logs());
    let mut redis = RedisServer::existing(port);
    redis.restart();
    assert!(
        app.wait_for_log("Subscribed to", Duration::from_secs(15)),
        "{}",
        app.logs()
    );
    redis.publish("conformance", "late-redis");
    assert!(
        wait_until(Duration::from_secs(10), || received(&app) == "late-redis"),
        "{}",
        app.logs()
    );
}

#[test]
fn a_selected_component_runs_only_its_own_triggers() {
    let redis = RedisServer::start();
    require_guest();
    let app = TesseraUp::spawn(
        &manifest(),
        &["--component-id", "denied"],
        &[("SPIN_VARIABLE_REDIS_ADDRESS", redis.address().as_str())],
    );
    assert_eq!(get(&app, "/denied/hello"), (200, "hello".into()));
    assert_eq!(get(&app, "/granted/hello").0, 404);
    assert!(!app.logs().contains("Subscribed to"), "{}", app.logs());
}

#[test]
fn guests_fail_fast_and_together_while_redis_hangs() {
    require_guest();
    // Accepts connections and never answers: a paused or wedged Redis.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("redis://127.0.0.1:{}", hung.local_addr().unwrap().port());
    let app = TesseraUp::spawn(
        &manifest(),
        &["--no-dev-services"],
        &[("SPIN_VARIABLE_REDIS_ADDRESS", address.as_str())],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let started = std::time::Instant::now();
    let statuses = rt.block_on(async {
        let requests = (0..8).map(|i| {
            let url = app.url(&format!("/granted/redis/publish/ch/m{i}"));
            async move { reqwest::get(url).await.map(|r| r.status().as_u16()) }
        });
        futures::future::join_all(requests).await
    });
    let took = started.elapsed();
    assert!(
        statuses.iter().all(|s| matches!(s, Ok(502))),
        "{statuses:?}\n{}",
        app.logs()
    );
    // One connection attempt (2 s connect + 5 s response timeouts at most) shared by all,
    // not eight attempts one after another behind a lock.
    assert!(took < Duration::from_secs(9), "took {took:?}");
    drop(hung);
}

#[test]
fn metrics_count_messages_and_reconnects() {
    require_guest();
    let mut redis = RedisServer::start();
    let app = TesseraUp::spawn(
        &manifest(),
        &["--metrics", "127.0.0.1:0"],
        &[("SPIN_VARIABLE_REDIS_ADDRESS", redis.address().as_str())],
    );
    assert!(app.wait_for_log("Subscribed to", Duration::from_secs(10)));
    let metrics_url = app
        .logs()
        .lines()
        .find_map(|l| l.strip_prefix("Serving metrics on ").map(str::to_owned))
        .expect("the metrics address is printed");
    let scrape = || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            reqwest::get(metrics_url.trim())
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    };
    let has = |line: &str| scrape().lines().any(|l| l == line);

    redis.publish("conformance", "one");
    redis.publish("conformance", "trap");
    let ok =
        r#"tessera_redis_messages_total{channel="conformance",component="granted",outcome="ok"} 1"#;
    let failed = r#"tessera_redis_messages_total{channel="conformance",component="granted",outcome="failed"} 1"#;
    assert!(
        wait_until(Duration::from_secs(10), || has(ok) && has(failed)),
        "{}",
        scrape()
    );
    assert!(scrape().contains(
        r#"tessera_redis_message_lag_seconds_count{channel="conformance",component="granted"} 2"#
    ));

    redis.stop();
    assert!(app.wait_for_log("reconnecting", Duration::from_secs(10)));
    redis.restart();
    let reconnected = format!(
        r#"tessera_redis_reconnects_total{{address="{}"}} 1"#,
        redis.address()
    );
    assert!(
        wait_until(Duration::from_secs(20), || has(&reconnected)),
        "{}",
        scrape()
    );
}

#[test]
fn the_first_command_after_a_redis_restart_succeeds() {
    let mut redis = RedisServer::start();
    let app = start(&redis.address());
    assert_eq!(get(&app, "/granted/redis/publish/ch/before").0, 200);
    // The host's shared connection to Redis is now dead, and does not know it yet.
    redis.restart();
    let (status, body) = get(&app, "/granted/redis/publish/ch/after");
    assert_eq!(status, 200, "{body}\n{}", app.logs());
}

#[test]
fn reuse_instances_must_name_a_component_with_a_redis_trigger() {
    let manifest = manifest();
    let manifest = manifest.to_str().unwrap();
    for (id, expected) in [
        (
            "nope",
            "--reuse-instances nope: no such component; the app has: denied, granted",
        ),
        (
            "denied",
            "--reuse-instances denied: the component has no [[trigger.redis]]",
        ),
    ] {
        let (code, out) = tessera_blackbox::run_tessera(
            &[
                "up",
                "-f",
                manifest,
                "--listen",
                "127.0.0.1:0",
                "--reuse-instances",
                id,
            ],
            &[("SPIN_VARIABLE_REDIS_ADDRESS", "redis://127.0.0.1:1")],
        );
        assert_eq!(code, 1, "{out}");
        assert!(out.contains(expected) && out.contains("spin.toml"), "{out}");
    }
}
