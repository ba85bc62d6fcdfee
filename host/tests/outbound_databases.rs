//! Outbound PostgreSQL, MySQL (MariaDB) and MQTT from the Rust conformance guest against
//! real servers on free loopback ports, granted and denied by `allowed_outbound_hosts`,
//! plus the LLM interface's error when no model is configured.

mod support;

use std::time::Duration;

use support::{MariaDb, Mosquitto, Postgres};
use tessera_blackbox::{TesseraUp, require_guest, workspace_root};

fn start(env: &[(&str, &str)]) -> TesseraUp {
    require_guest();
    let manifest = workspace_root().join("host/tests/apps/conformance/spin.toml");
    let rc = workspace_root().join("host/tests/apps/conformance/runtime-config.toml");
    let rc = rc.display().to_string();
    let mut env = env.to_vec();
    env.push(("SPIN_VARIABLE_SECRET_TOKEN", "s3cret"));
    TesseraUp::spawn(&manifest, &["--runtime-config-file", &rc], &env)
}

async fn get(app: &TesseraUp, path: &str) -> (u16, String) {
    let resp = reqwest::get(app.url(path)).await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

fn assert_contains(body: &str, needles: &[&str]) {
    for needle in needles {
        assert!(body.contains(needle), "{needle:?} missing from {body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_round_trips_in_every_wit_version_only_when_granted() {
    let pg = Postgres::start();
    let port = pg.port().to_string();
    let app = start(&[("SPIN_VARIABLE_PG_PORT", &port)]);
    let addr = pg.address();

    let (status, body) = get(&app, &format!("/granted/pg/4?addr={addr}")).await;
    assert_eq!(status, 200, "{body}");
    assert_contains(
        &body,
        &[
            "inserted=1",
            "\"hello v4\"",
            "(2026, 11, 29, 12, 30, 0, 0)",
            "\"6f1c1a52-6c1e-4a5e-9d43-2a4c1b7e0f00\"",
            "[Some(1), None, Some(3)]",
            "DbNull",
            // A failed query is a structured error value, not a trap.
            "QueryFailed",
            "42P01",
        ],
    );
    let (status, body) = get(&app, &format!("/granted/pg/3?addr={addr}")).await;
    assert_eq!(status, 200, "{body}");
    assert_contains(&body, &["\"hello v3\"", "(2026, 11, 29)", "Int64(1)"]);
    let (status, body) = get(&app, &format!("/granted/pg/2?addr={addr}")).await;
    assert_eq!(status, 200, "{body}");
    assert_contains(&body, &["\"hello v2\"", "Int32(1)"]);

    // Same server, but the component is not granted it.
    let (status, body) = get(&app, &format!("/denied/pg/4?addr={addr}")).await;
    assert_eq!(status, 502);
    assert_contains(
        &body,
        &[
            "ConnectionFailed",
            &format!("postgres://127.0.0.1:{port} is not permitted"),
        ],
    );
    // The key=value form is checked the same way.
    let kv_form = format!("host=127.0.0.2 port={port} user=tessera dbname=postgres");
    let (status, body) = get(&app, &format!("/granted/pg/3?addr={kv_form}")).await;
    assert_eq!(status, 502);
    assert_contains(&body, &["is not permitted"]);

    // A granted server that is gone: the guest learns why, not only that it failed.
    drop(pg);
    let (status, body) = get(&app, &format!("/granted/pg/4?addr={addr}")).await;
    assert_eq!(status, 502);
    assert_contains(
        &body,
        &[
            "ConnectionFailed",
            "error connecting to server: ",
            "refused",
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_round_trips_only_when_granted() {
    let db = MariaDb::start();
    let port = db.port().to_string();
    let app = start(&[("SPIN_VARIABLE_MYSQL_PORT", &port)]);
    let addr = db.address();

    let (status, body) = get(&app, &format!("/granted/mysql?addr={addr}")).await;
    assert_eq!(status, 200, "{body}");
    assert_contains(
        &body,
        &["\"hello mysql\"", "Uint64(42)", "[0, 1, 2]", "QueryFailed"],
    );

    let (status, body) = get(&app, &format!("/denied/mysql?addr={addr}")).await;
    assert_eq!(status, 502);
    assert_contains(
        &body,
        &[&format!("mysql://127.0.0.1:{port} is not permitted")],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mqtt_publishes_only_when_granted() {
    let broker = Mosquitto::start();
    let port = broker.port().to_string();
    let app = start(&[("SPIN_VARIABLE_MQTT_PORT", &port)]);

    // A subscriber that reports the first message on the topic.
    let mut options =
        rumqttc::MqttOptions::new("tessera-test-subscriber", "127.0.0.1", broker.port());
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = rumqttc::AsyncClient::new(options, 10);
    client
        .subscribe("tessera-test", rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    let received = tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {}
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => return p.payload,
                Ok(_) => {}
                Err(e) => panic!("subscriber: {e}"),
            }
        }
    });
    // Let the subscription land before publishing.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let addr = broker.address();
    assert_eq!(
        get(&app, &format!("/granted/mqtt/tessera-test?addr={addr}")).await,
        (200, "published".into())
    );
    let payload = tokio::time::timeout(Duration::from_secs(10), received)
        .await
        .expect("message arrives")
        .unwrap();
    assert_eq!(&payload[..], b"hello mqtt");

    let (status, body) = get(&app, &format!("/denied/mqtt/tessera-test?addr={addr}")).await;
    assert_eq!(status, 502);
    assert_contains(
        &body,
        &[&format!("mqtt://127.0.0.1:{port} is not permitted")],
    );
    // Another port on the same host is not granted either.
    let (status, body) = get(&app, "/granted/mqtt/x?addr=mqtt://127.0.0.1:1").await;
    assert_eq!(status, 502);
    assert_contains(&body, &["not permitted"]);
}

#[tokio::test]
async fn llm_without_a_model_is_an_error_value_not_a_trap() {
    let app = start(&[]);
    let (status, body) = get(&app, "/granted/llm").await;
    assert_eq!(status, 503, "{body}");
    assert_contains(
        &body,
        &["InvalidInput", "does not have access to use 'llama2-chat'"],
    );
    assert_eq!(get(&app, "/granted/hello").await.0, 200);
}
