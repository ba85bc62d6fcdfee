//! Host conformance: the conformance guest, mounted as two components with different
//! grants, run by the real `tessera up` and driven over HTTP.

use std::time::{Duration, Instant};

use tessera_blackbox::{TesseraUp, require_guest, wait_until, workspace_root};

fn manifest() -> std::path::PathBuf {
    workspace_root().join("host/tests/apps/conformance/spin.toml")
}

fn runtime_config() -> String {
    workspace_root()
        .join("host/tests/apps/conformance/runtime-config.toml")
        .display()
        .to_string()
}

fn start(extra: &[&str], env: &[(&str, &str)]) -> TesseraUp {
    require_guest();
    let rc = runtime_config();
    let mut args = vec!["--runtime-config-file", rc.as_str()];
    args.extend_from_slice(extra);
    let mut env = env.to_vec();
    env.push(("SPIN_VARIABLE_SECRET_TOKEN", "s3cret"));
    TesseraUp::spawn(&manifest(), &args, &env)
}

async fn get(app: &TesseraUp, path: &str) -> (u16, String) {
    let resp = reqwest::get(app.url(path)).await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

#[tokio::test]
async fn serves_a_component_and_reports_unknown_routes_as_json_404() {
    let app = start(&[], &[]);
    assert_eq!(get(&app, "/granted/hello").await, (200, "hello".into()));
    let (status, body) = get(&app, "/nowhere").await;
    assert_eq!(status, 404);
    assert_eq!(body, r#"{"errors":[{"message":"Not Found"}]}"#);
}

#[tokio::test]
async fn a_body_the_guest_is_still_writing_after_the_head_arrives_whole() {
    let app = start(&[], &[]);
    let (status, body) = get(&app, "/granted/big/4096").await;
    assert_eq!(status, 200);
    assert_eq!(body.len(), 4096 << 10);
    assert!(body.bytes().all(|b| b == b'x'));
    assert_eq!(get(&app, "/granted/hello").await, (200, "hello".into()));
}

#[tokio::test]
async fn passes_spin_request_headers() {
    let app = start(&[], &[]);
    let (status, body) = get(&app, "/granted/headers?x=1").await;
    assert_eq!(status, 200);
    let h: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(h["spin-path-info"], "/headers");
    assert_eq!(h["spin-matched-route"], "/granted/...");
    assert_eq!(h["spin-component-route"], "/granted");
    assert_eq!(h["spin-full-url"], app.url("/granted/headers?x=1"));
    assert!(
        h["spin-client-addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
}

#[tokio::test]
async fn most_specific_route_wins() {
    let app = start(&[], &[]);
    let (_, body) = get(&app, "/items/special").await;
    let h: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        h["spin-matched-route"], "/items/special",
        "exact route beats :id"
    );
    let (_, body) = get(&app, "/items/42").await;
    let h: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(h["spin-matched-route"], "/items/:id");
    assert_eq!(h["spin-path-match-id"], "42");
}

/// Every request runs in an instance of its own, including those instantiated ahead of
/// their request (`triggers::ready_instance`): none has seen a request before.
#[tokio::test]
async fn every_request_gets_an_instance_that_has_served_no_other() {
    let app = start(&[], &[]);
    for _ in 0..20 {
        assert_eq!(get(&app, "/granted/requests-seen").await, (200, "1".into()));
    }
    let client = reqwest::Client::new();
    let burst = (0..32).map(|_| {
        let request = client.get(app.url("/granted/requests-seen")).send();
        async move {
            request
                .await
                .expect("request")
                .text()
                .await
                .unwrap_or_default()
        }
    });
    let answers = futures::future::join_all(burst).await;
    assert!(answers.iter().all(|a| a == "1"), "answers: {answers:?}");
}

/// `--max-instances` bounds the instances alive at once; requests beyond it wait for a
/// slot rather than fail, including while finished instances are still being torn down
/// after their responses have gone out.
#[tokio::test]
async fn a_burst_beyond_the_instance_limit_waits_its_turn_and_is_served() {
    let app = start(&["--max-instances", "2"], &[]);
    let client = reqwest::Client::new();
    let burst = (0..64).map(|_| {
        let request = client.get(app.url("/granted/hello")).send();
        async move { request.await.expect("hello request").status().as_u16() }
    });
    let statuses = futures::future::join_all(burst).await;
    assert!(statuses.iter().all(|&s| s == 200), "statuses: {statuses:?}");
}

#[tokio::test]
async fn runaway_component_times_out_while_others_are_served() {
    let app = start(&["--request-timeout", "1s"], &[]);
    let looping = tokio::spawn({
        let url = app.url("/granted/loop");
        async move {
            let started = Instant::now();
            let status = reqwest::get(url)
                .await
                .expect("loop request")
                .status()
                .as_u16();
            (status, started.elapsed())
        }
    });
    // While the loop burns its core, other requests still get answers.
    for _ in 0..20 {
        assert_eq!(get(&app, "/granted/hello").await.0, 200);
    }
    let (status, elapsed) = looping.await.unwrap();
    assert_eq!(status, 500);
    assert!(
        elapsed < Duration::from_secs(5),
        "timed out only after {elapsed:?}"
    );
    assert_eq!(
        get(&app, "/granted/hello").await.0,
        200,
        "host still serves after the timeout"
    );
}

/// An idle host stops advancing wasmtime's epoch (the thread parks, `runtime::epoch`); a
/// runaway guest that arrives then must still be stopped at its deadline.
#[tokio::test]
async fn runaway_component_arriving_at_an_idle_host_times_out() {
    let app = start(&["--request-timeout", "1s"], &[]);
    assert!(
        wait_until(Duration::from_secs(10), || epoch_thread_parked(app.pid())),
        "the idle host's epoch thread never parked"
    );
    let started = Instant::now();
    // Not stopped, the guest would spin for good: give up on it well before that.
    let answer = tokio::time::timeout(Duration::from_secs(10), get(&app, "/granted/loop")).await;
    let Ok((status, _)) = answer else {
        panic!("the runaway guest was never stopped");
    };
    assert_eq!(status, 500);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "timed out only after {:?}",
        started.elapsed()
    );
}

/// Whether process `pid`'s epoch thread is parked: waiting on a futex, where a ticking
/// one sleeps on a timer between ticks (Linux's `wchan`).
fn epoch_thread_parked(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        let read = |file: &str| std::fs::read_to_string(task.path().join(file)).unwrap_or_default();
        read("comm").trim() == "tessera-epoch" && read("wchan").contains("futex")
    })
}

#[tokio::test]
async fn trap_and_memory_cap_give_500_and_the_host_carries_on() {
    let app = start(&["--max-instance-memory", "32MiB"], &[]);
    let (status, body) = get(&app, "/granted/trap").await;
    assert_eq!(status, 500);
    assert_eq!(body, r#"{"errors":[{"message":"Something went wrong"}]}"#);
    assert_eq!(
        get(&app, "/granted/alloc/1").await,
        (200, (1 << 20).to_string())
    );
    assert_eq!(
        get(&app, "/granted/alloc/64").await.0,
        500,
        "64 MiB exceeds the 32 MiB cap"
    );
    assert_eq!(get(&app, "/granted/hello").await.0, 200);
    // Output is captured by a reader thread: wait for the line rather than race it.
    assert!(
        app.wait_for_log("request failed", Duration::from_secs(5)),
        "failures are logged"
    );
}

#[tokio::test]
async fn variables_come_from_the_manifest_and_environment() {
    let app = start(&[], &[("SPIN_VARIABLE_GREETING", "hi from env")]);
    assert_eq!(
        get(&app, "/granted/variable/greeting").await,
        (200, "hi from env".into())
    );
    assert_eq!(
        get(&app, "/granted/variable/token").await,
        (200, "s3cret".into())
    );
    let (status, body) = get(&app, "/denied/variable/greeting").await;
    assert_eq!(status, 404, "a component sees only its own variables");
    assert!(body.contains("Undefined"), "{body}");
    let (status, body) = get(&app, "/granted/variable/Not-Valid").await;
    assert_eq!(status, 404);
    assert!(body.contains("InvalidName"), "{body}");
}

#[tokio::test]
async fn sqlite_opens_only_granted_labels() {
    let app = start(&[], &[]);
    assert_eq!(
        get(&app, "/granted/sqlite/default").await,
        (200, "1".into())
    );
    assert_eq!(
        get(&app, "/granted/sqlite/default").await,
        (200, "2".into()),
        "data persists across instances"
    );
    assert_eq!(
        get(&app, "/granted/sqlite/data").await,
        (200, "1".into()),
        "each label is its own database"
    );
    let (status, body) = get(&app, "/granted/sqlite/secrets").await;
    assert_eq!(status, 403);
    assert!(body.contains("AccessDenied"), "{body}");
    let (status, body) = get(&app, "/denied/sqlite/default").await;
    assert_eq!(status, 403);
    assert!(body.contains("AccessDenied"), "{body}");
}

#[tokio::test]
async fn key_value_opens_only_granted_stores() {
    let app = start(&[], &[]);
    assert_eq!(get(&app, "/granted/kv/default").await, (200, "1".into()));
    assert_eq!(get(&app, "/granted/kv/default").await, (200, "2".into()));
    let (status, body) = get(&app, "/denied/kv/default").await;
    assert_eq!(status, 403);
    assert!(body.contains("AccessDenied"), "{body}");
}

#[tokio::test]
async fn outbound_http_reaches_only_allowed_hosts() {
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = upstream.local_addr().unwrap().port().to_string();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut sock, _)) = upstream.accept().await {
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let _ = sock
                .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                .await;
        }
    });
    let app = start(&[], &[("SPIN_VARIABLE_UPSTREAM_PORT", &port)]);
    let target = format!("http://127.0.0.1:{port}/ping");
    assert_eq!(
        get(&app, &format!("/granted/outbound?url={target}")).await,
        (200, "upstream status 204".into())
    );
    let (status, body) = get(&app, &format!("/denied/outbound?url={target}")).await;
    assert_eq!(status, 502);
    assert!(body.contains("Denied"), "{body}");
    let (status, _) = get(&app, "/granted/outbound?url=http://127.0.0.2:9/").await;
    assert_eq!(status, 502, "another host is not allowed");
}

#[tokio::test]
async fn files_are_mounted_read_only_for_their_component() {
    let app = start(&[], &[]);
    assert_eq!(
        get(&app, "/granted/file/static/note.txt").await,
        (200, "a mounted file\n".into())
    );
    assert_eq!(get(&app, "/denied/file/static/note.txt").await.0, 404);
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_the_component_runs() {
    let app = start(&["--max-request-body", "1KiB"], &[]);
    let client = reqwest::Client::new();
    let ok = client
        .post(app.url("/granted/echo"))
        .body(vec![b'x'; 100])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.text().await.unwrap(), "100");
    let big = client
        .post(app.url("/granted/echo"))
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status().as_u16(), 413);
}

#[tokio::test]
async fn compiled_components_are_cached_across_restarts() {
    require_guest();
    let state = tempfile::tempdir().unwrap();
    let rc = runtime_config();
    let args = ["--runtime-config-file", rc.as_str()];
    let env = [("SPIN_VARIABLE_SECRET_TOKEN", "x")];
    let first = TesseraUp::spawn_with_state(&manifest(), &args, &env, state.path());
    // Log lines reach stderr through the host's log writer thread, after the ready line.
    assert!(
        first.wait_for_log("compiled", std::time::Duration::from_secs(10)),
        "first start compiles:\n{}",
        first.logs()
    );
    drop(first);
    let second = TesseraUp::spawn_with_state(&manifest(), &args, &env, state.path());
    assert_eq!(get(&second, "/granted/hello").await.0, 200);
    // The writer keeps the order of lines: once the request's line is out, a "compiled"
    // line from the start would be out too.
    assert!(
        second.wait_for_log("path=/granted/hello", std::time::Duration::from_secs(10)),
        "{}",
        second.logs()
    );
    assert!(
        !second.logs().contains("compiled"),
        "restart reuses the cache:\n{}",
        second.logs()
    );
}

#[tokio::test]
async fn metrics_count_what_was_served() {
    let app = start(&["--metrics", "127.0.0.1:0"], &[]);
    let logs = app.logs();
    let metrics_url = logs
        .lines()
        .find_map(|l| l.strip_prefix("Serving metrics on "))
        .expect("the metrics address is printed")
        .trim()
        .to_owned();
    let client = reqwest::Client::new();
    let hellos = (0..20).map(|_| client.get(app.url("/granted/hello")).send());
    for response in futures::future::join_all(hellos).await {
        assert_eq!(response.expect("request").status(), 200);
    }
    for _ in 0..3 {
        assert_eq!(get(&app, "/nowhere").await.0, 404);
    }

    let scraped = client.get(&metrics_url).send().await.expect("scrape");
    assert_eq!(scraped.status(), 200);
    let text = scraped.text().await.unwrap_or_default();
    for expected in [
        r#"tessera_http_requests_total{component="granted",status="200"} 20"#,
        r#"tessera_http_requests_total{component="-",status="404"} 3"#,
        r#"tessera_http_request_duration_seconds_count{component="granted"} 20"#,
        "tessera_instances_limit 256",
        "tessera_instances_in_use 0",
    ] {
        assert!(
            text.lines().any(|line| line == expected),
            "{expected:?} not in:\n{text}"
        );
    }
    assert!(
        text.contains("tessera_compile_cache_lookups_total{outcome="),
        "{text}"
    );
    let elsewhere = client
        .get(metrics_url.replace("/metrics", "/other"))
        .send()
        .await
        .expect("request");
    assert_eq!(elsewhere.status(), 404);
}
