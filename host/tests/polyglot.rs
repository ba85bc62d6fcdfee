//! Components in other languages under the real `tessera up`: the Python guest
//! (componentize-py 0.17.2 + spin-sdk 3.4.1) and the JavaScript guest (componentize-js
//! 0.19.3), each mounted granted and denied, exercising the Spin 3 capabilities they reach.
//! `scripts/test.sh` builds both once (host/tests/build-guests.sh).

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::Postgres;
use tessera_blackbox::{TesseraUp, workspace_root};

fn manifest() -> PathBuf {
    workspace_root().join("host/tests/apps/polyglot/spin.toml")
}

/// The Python and JavaScript guests must have been built (`scripts/test.sh` does it).
fn require_guests() {
    for guest in ["python_guest", "js_guest"] {
        let wasm = workspace_root().join(format!("target/guests/{guest}.wasm"));
        assert!(
            wasm.exists(),
            "{} is missing: build it with `bash host/tests/build-guests.sh`",
            wasm.display()
        );
    }
}

async fn get(app: &TesseraUp, path: &str) -> (u16, String) {
    let resp = reqwest::get(app.url(path)).await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// A one-shot HTTP upstream answering 204, for outbound `wasi:http`.
async fn upstream() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let _ = sock
                .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                .await;
        }
    });
    port
}

fn assert_contains(what: &str, (status, body): (u16, String), want_status: u16, needles: &[&str]) {
    assert_eq!(status, want_status, "{what}: {body}");
    for needle in needles {
        assert!(
            body.contains(needle),
            "{what}: {needle:?} missing from {body}"
        );
    }
}

/// One app start for every capability check: the large guests compile once.
#[tokio::test(flavor = "multi_thread")]
async fn python_and_javascript_guests_reach_granted_capabilities_and_are_denied_the_rest() {
    require_guests();
    let pg = Postgres::start();
    let (pg_port, http_port) = (pg.port().to_string(), upstream().await.to_string());
    let app = TesseraUp::spawn(
        &manifest(),
        &[],
        &[
            ("SPIN_VARIABLE_PG_PORT", &pg_port),
            ("SPIN_VARIABLE_UPSTREAM_PORT", &http_port),
        ],
    );

    // HTTP in, variables and wasi:config.
    assert_eq!(
        get(&app, "/py/hello").await,
        (200, "hello from python".into())
    );
    assert_eq!(
        get(&app, "/js/hello").await,
        (200, "hello from javascript".into())
    );
    assert_eq!(
        get(&app, "/py/variable/greeting").await,
        (200, "hello from the manifest".into())
    );
    assert_eq!(get(&app, "/py/config/color").await, (200, "'teal'".into()));
    assert_eq!(get(&app, "/py/config/missing").await, (200, "None".into()));
    assert_eq!(
        get(&app, "/py-denied/config/color").await,
        (200, "None".into()),
        "own variables only"
    );
    assert_eq!(
        get(&app, "/js/config/greeting").await,
        (200, "\"hello from the manifest\"".into())
    );
    assert_contains(
        "py config-all",
        get(&app, "/py/config-all").await,
        200,
        &["[\"color\", \"teal\"]"],
    );

    // Key-value: one store behind fermyon:spin/key-value and wasi:keyvalue, across languages.
    assert_eq!(get(&app, "/py/kv-set/default/shared/one").await.0, 200);
    assert_eq!(
        get(&app, "/js/wasi-kv-get/default/shared").await,
        (200, "one".into())
    );
    assert_eq!(get(&app, "/js/kv-set/default/from-js/two").await.0, 200);
    assert_eq!(
        get(&app, "/py/wasi-kv-get/default/from-js").await,
        (200, "b'two'".into())
    );
    let (status, body) = get(&app, "/py/wasi-kv/default").await;
    assert_eq!(status, 200, "{body}");
    let kv: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(kv["increments"], serde_json::json!([5, 10]));
    assert_eq!(kv["cas"], "changed");
    assert_eq!(kv["cas_failed"], true, "a stale compare-and-swap fails");
    assert_eq!(
        kv["many"],
        serde_json::json!([["py:a", "1"], ["py:b", "2"], ["py:missing", null]])
    );
    assert_eq!(kv["exists_b"], false);
    assert_eq!(
        kv["keys"],
        serde_json::json!(["py:a", "py:c", "py:cas", "py:counter"])
    );
    assert_eq!(get(&app, "/js/increment/default").await, (200, "2".into()));
    assert_eq!(get(&app, "/js/increment/default").await, (200, "4".into()));
    assert_contains(
        "py denied kv",
        get(&app, "/py-denied/wasi-kv-get/default/shared").await,
        403,
        &["AccessDenied"],
    );
    assert_contains(
        "js denied kv",
        get(&app, "/js-denied/increment/default").await,
        403,
        &["access-denied"],
    );

    // sqlite from JavaScript.
    assert_eq!(get(&app, "/js/sqlite/default").await, (200, "1".into()));
    assert_eq!(get(&app, "/js/sqlite/default").await, (200, "2".into()));
    assert_contains(
        "js denied sqlite",
        get(&app, "/js-denied/sqlite/default").await,
        403,
        &["access-denied"],
    );

    // Outbound HTTP.
    let target = format!("http://127.0.0.1:{http_port}/ping");
    for who in ["py", "js"] {
        assert_eq!(
            get(&app, &format!("/{who}/outbound?url={target}")).await,
            (200, "upstream status 204".into()),
            "{who}"
        );
        let (status, _) = get(&app, &format!("/{who}-denied/outbound?url={target}")).await;
        assert_ne!(
            status, 200,
            "{who}-denied reached a host it was not granted"
        );
    }

    // PostgreSQL: Python through fermyon:spin/postgres@2.0.0, JavaScript through 4.0.0.
    let addr = pg.address();
    assert_contains(
        "py pg",
        get(&app, &format!("/py/pg?addr={addr}")).await,
        200,
        &["hello from python"],
    );
    assert_eq!(
        get(&app, &format!("/js/pg?addr={addr}")).await,
        (200, "hello from javascript".into())
    );
    let not_permitted = format!("postgres://127.0.0.1:{pg_port} is not permitted");
    assert_contains(
        "py denied pg",
        get(&app, &format!("/py-denied/pg?addr={addr}")).await,
        502,
        &[&not_permitted],
    );
    assert_contains(
        "js denied pg",
        get(&app, &format!("/js-denied/pg?addr={addr}")).await,
        502,
        &[&not_permitted],
    );

    // LLM: no model is configured, an error value both SDKs surface.
    for who in ["py", "js"] {
        assert_contains(
            who,
            get(&app, &format!("/{who}/llm")).await,
            502,
            &["does not have access to use 'llama2-chat'"],
        );
    }
    assert_eq!(get(&app, "/py/hello").await.0, 200, "still serving");
}

/// The compile cache covers the large guests: a restart answers its first request fast.
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_with_a_warm_compile_cache_answers_the_python_guest_within_a_second() {
    require_guests();
    let state = tempfile::tempdir().unwrap();
    let first = TesseraUp::spawn_with_state(&manifest(), &[], &[], state.path());
    // Log lines reach stderr through the host's log writer thread, after the ready line.
    assert!(
        first.wait_for_log("compiled", Duration::from_secs(30)),
        "first start compiles:\n{}",
        first.logs()
    );
    assert_eq!(get(&first, "/py/hello").await.0, 200);
    drop(first);

    let started = Instant::now();
    let second = TesseraUp::spawn_with_state(&manifest(), &[], &[], state.path());
    let answer = get(&second, "/py/hello").await;
    let elapsed = started.elapsed();
    assert_eq!(answer, (200, "hello from python".into()));
    // The writer keeps the order of lines: once the request's line is out, a "compiled"
    // line from the start would be out too.
    assert!(
        second.wait_for_log("path=/py/hello", Duration::from_secs(10)),
        "{}",
        second.logs()
    );
    assert!(
        !second.logs().contains("compiled"),
        "restart reuses the cache:\n{}",
        second.logs()
    );
    assert!(
        elapsed < Duration::from_secs(1),
        "start to first Python answer took {elapsed:?}"
    );
}

/// The Redis trigger runs the Python guest's `InboundRedis` handler (world `spin-all`).
#[tokio::test(flavor = "multi_thread")]
async fn the_redis_trigger_runs_a_python_handler() {
    require_guests();
    let redis = tessera_blackbox::RedisServer::start();
    let app = TesseraUp::spawn(
        &workspace_root().join("host/tests/apps/polyglot-redis/spin.toml"),
        &[],
        &[("SPIN_VARIABLE_REDIS_ADDRESS", &redis.address())],
    );
    assert!(
        app.wait_for_log("Subscribed to", Duration::from_secs(30)),
        "never subscribed:\n{}",
        app.logs()
    );
    redis.publish("polyglot", "hello from redis");
    let started = Instant::now();
    loop {
        let (status, body) = get(&app, "/py/wasi-kv-get/default/py:redis").await;
        if status == 200 {
            assert_eq!(body, "b'hello from redis'");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "message never handled:\n{}",
            app.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
