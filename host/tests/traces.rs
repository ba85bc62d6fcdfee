//! OpenTelemetry traces from the host: the real `tessera up` exporting to a real OTLP
//! receiver (`tessera_blackbox::otlp`), the conformance guest driven over HTTP.
//!
//! The marketplace's trace across the bus is in `tests/tests/traces.rs`.

use std::time::Duration;

use tessera_blackbox::otlp::{OtlpReceiver, ReceivedSpan};
use tessera_blackbox::{TesseraUp, require_guest, workspace_root};

const DEADLINE: Duration = Duration::from_secs(20);

/// A caller's context: trace `4bf9…4736`, span `00f0…02b7`.
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn caller_traceparent() -> String {
    format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01")
}

fn start(env: &[(&str, &str)]) -> TesseraUp {
    require_guest();
    let dir = workspace_root().join("host/tests/apps/conformance");
    let rc = dir.join("runtime-config.toml").display().to_string();
    let mut env = env.to_vec();
    env.push(("SPIN_VARIABLE_SECRET_TOKEN", "s3cret"));
    TesseraUp::spawn(
        &dir.join("spin.toml"),
        &["--runtime-config-file", rc.as_str()],
        &env,
    )
}

fn start_traced(receiver: &OtlpReceiver, env: &[(&str, &str)]) -> TesseraUp {
    let mut all = receiver.env();
    all.extend_from_slice(env);
    start(&all)
}

/// GET `path` with `traceparent` (if any); the status and body.
async fn get(app: &TesseraUp, path: &str, traceparent: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(app.url(path));
    if let Some(value) = traceparent {
        request = request.header("traceparent", value);
    }
    let resp = request.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// The `traceparent` the conformance guest saw (it echoes its request headers).
fn seen_traceparent(echoed: &str) -> Option<String> {
    let headers: serde_json::Value = serde_json::from_str(echoed).expect("echoed headers");
    headers["traceparent"].as_str().map(str::to_owned)
}

fn server_span_of(spans: &[ReceivedSpan], path: &str) -> Option<ReceivedSpan> {
    spans
        .iter()
        .find(|s| s.kind == "SERVER" && s.attribute("url.path") == Some(path))
        .cloned()
}

#[tokio::test]
async fn a_request_span_continues_the_callers_trace_and_the_guest_continues_it() {
    let receiver = OtlpReceiver::start().await;
    let app = start_traced(&receiver, &[]);

    let (status, echoed) = get(&app, "/granted/headers", Some(&caller_traceparent())).await;
    assert_eq!(status, 200);
    let spans = receiver
        .wait_for("the request's server span", DEADLINE, |spans| {
            server_span_of(spans, "/granted/headers").is_some()
        })
        .await;
    let server = server_span_of(&spans, "/granted/headers").expect("server span");
    assert_eq!(server.trace_id, CALLER_TRACE);
    assert_eq!(server.parent_span_id.as_deref(), Some(CALLER_SPAN));
    assert_eq!(server.name, "granted GET /granted/...");
    assert_eq!(server.attribute("spin.component.id"), Some("granted"));
    assert_eq!(server.attribute("http.request.method"), Some("GET"));
    assert_eq!(server.attribute("http.route"), Some("/granted/..."));
    assert_eq!(server.attribute("http.response.status_code"), Some("200"));
    assert_eq!(server.service, "tessera");
    // The guest sees its own request's span, not the caller's.
    assert_eq!(seen_traceparent(&echoed), Some(server.traceparent()));
}

#[tokio::test]
async fn an_invalid_traceparent_starts_a_new_trace_and_the_request_is_served() {
    let receiver = OtlpReceiver::start().await;
    let app = start_traced(&receiver, &[]);
    let forged = [
        "garbage",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        &"0".repeat(8000),
    ];
    for (i, value) in forged.iter().enumerate() {
        let path = format!("/granted/headers?case={i}");
        let (status, echoed) = get(&app, &path, Some(value)).await;
        assert_eq!(status, 200, "{value}");
        let seen = seen_traceparent(&echoed).expect("the guest gets a traceparent");
        assert!(!seen.contains(CALLER_TRACE), "{seen}");
    }
    let spans = receiver
        .wait_for("a server span per request", DEADLINE, |spans| {
            spans.iter().filter(|s| s.kind == "SERVER").count() == forged.len()
        })
        .await;
    for span in spans.iter().filter(|s| s.kind == "SERVER") {
        assert_eq!(span.parent_span_id, None, "a root span: {span:?}");
        assert_ne!(span.trace_id, CALLER_TRACE);
    }
}

#[tokio::test]
async fn an_outbound_request_has_a_client_span_and_carries_it_as_traceparent() {
    // An upstream that answers 204 and hands over the request head it received.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = upstream.local_addr().unwrap().port().to_string();
    let (heads, mut received) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut sock, _)) = upstream.accept().await {
            let mut buf = vec![0u8; 8192];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            let _ = heads.send(String::from_utf8_lossy(&buf[..n]).into_owned());
            let _ = sock
                .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                .await;
        }
    });
    let receiver = OtlpReceiver::start().await;
    let app = start_traced(&receiver, &[("SPIN_VARIABLE_UPSTREAM_PORT", &port)]);

    let target = format!("http://127.0.0.1:{port}/ping?secret=x");
    let (status, body) = get(
        &app,
        &format!("/granted/outbound?url={target}"),
        Some(&caller_traceparent()),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "upstream status 204"));
    let head = received.recv().await.expect("the upstream got the request");
    let sent = head
        .lines()
        .find_map(|line| line.strip_prefix("traceparent: "))
        .unwrap_or_else(|| panic!("no traceparent in:\n{head}"))
        .trim()
        .to_owned();

    let spans = receiver
        .wait_for("the server and client spans", DEADLINE, |spans| {
            spans.iter().any(|s| s.kind == "CLIENT")
                && server_span_of(spans, "/granted/outbound").is_some()
        })
        .await;
    let server = server_span_of(&spans, "/granted/outbound").expect("server span");
    let client = spans
        .iter()
        .find(|s| s.kind == "CLIENT")
        .expect("client span");
    assert_eq!(client.trace_id, CALLER_TRACE);
    assert_eq!(
        client.parent_span_id.as_deref(),
        Some(server.span_id.as_str())
    );
    assert_eq!(client.name, "GET");
    assert_eq!(
        client.attribute("url.full"),
        Some(format!("http://127.0.0.1:{port}/ping").as_str()),
        "no query: it may carry secrets"
    );
    assert_eq!(client.attribute("http.response.status_code"), Some("204"));
    // The upstream continues the outbound request's span.
    assert_eq!(sent, client.traceparent());
}

#[tokio::test]
async fn host_calls_are_children_of_the_request_span() {
    let receiver = OtlpReceiver::start().await;
    let app = start_traced(&receiver, &[]);
    let (status, _) = get(&app, "/granted/sqlite/default", Some(&caller_traceparent())).await;
    assert_eq!(status, 200);
    let spans = receiver
        .wait_for("a sqlite span", DEADLINE, |spans| {
            spans.iter().any(|s| s.name.starts_with("sqlite "))
                && server_span_of(spans, "/granted/sqlite/default").is_some()
        })
        .await;
    let server = server_span_of(&spans, "/granted/sqlite/default").expect("server span");
    let queries: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.name.starts_with("sqlite "))
        .collect();
    for query in &queries {
        assert_eq!(
            query.parent_span_id.as_deref(),
            Some(server.span_id.as_str())
        );
        assert_eq!(query.kind, "CLIENT");
        assert_eq!(query.attribute("db.system.name"), Some("sqlite"));
        assert_eq!(query.attribute("db.namespace"), Some("default"));
        assert!(query.attribute("db.query.text").is_some(), "{query:?}");
    }
}

#[tokio::test]
async fn with_tracing_off_the_guest_sees_the_callers_headers_unchanged() {
    let app = start(&[]);
    let (_, echoed) = get(&app, "/granted/headers", None).await;
    assert_eq!(seen_traceparent(&echoed), None);
    let (_, echoed) = get(&app, "/granted/headers", Some(&caller_traceparent())).await;
    assert_eq!(seen_traceparent(&echoed), Some(caller_traceparent()));
}
