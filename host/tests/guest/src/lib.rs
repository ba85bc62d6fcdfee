//! A guest for host conformance tests: each route exercises one capability and reports
//! what happened, so tests can assert on the host's behaviour over real HTTP.

use spin_sdk::http::{Params, Request, Response, Router};
use spin_sdk::{http_component, redis_component};

#[http_component]
async fn handle(req: Request) -> Response {
    // Exact and `:param` routes have no path info: report what the host sent.
    if req
        .header("spin-path-info")
        .and_then(|h| h.as_str())
        .unwrap_or("")
        .is_empty()
    {
        return echo_spin_headers(req, Params::default());
    }
    // Routed on the suffix after the trigger route, so one wasm serves several
    // components (`/granted/...`, `/denied/...`) that differ only in their grants.
    let mut router = Router::suffix();
    router.get("/hello", |_: Request, _: Params| text(200, "hello"));
    router.get("/requests-seen", requests_seen);
    router.get("/loop", spin_forever);
    router.get("/trap", |_: Request, _: Params| -> Response {
        panic!("trap requested")
    });
    router.get("/alloc/:mib", allocate);
    router.get("/big/:kib", big_body);
    router.get("/headers", echo_spin_headers);
    router.get("/variable/:name", read_variable);
    router.get("/sqlite/:label", use_sqlite);
    router.get("/kv/:label", use_key_value);
    router.get_async("/outbound", fetch_outbound);
    router.get("/file/*", read_file);
    router.get("/redis/publish/:channel/:message", publish_to_redis);
    router.get("/redis/received", list_received);
    router.get("/pg/:version", use_postgres);
    router.get("/mysql", use_mysql);
    router.get("/mqtt/:topic", publish_mqtt);
    router.get("/llm", use_llm);
    router.get("/print", |_: Request, _: Params| {
        println!("to stdout\nsecond line");
        eprint!("to stderr, no newline");
        text(200, "printed")
    });
    router.post("/echo", |req: Request, _: Params| {
        text(200, &req.body().len().to_string())
    });
    router.handle_async(req).await
}

fn text(status: u16, body: &str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body.to_owned())
        .build()
}

/// How many requests this instance has handled, this one included: always 1 when every
/// request gets a fresh instance.
fn requests_seen(_: Request, _: Params) -> Response {
    static SEEN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let seen = SEEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    text(200, &seen.to_string())
}

fn spin_forever(_: Request, _: Params) -> Response {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn allocate(_: Request, params: Params) -> Response {
    let mib: usize = params.get("mib").and_then(|m| m.parse().ok()).unwrap_or(1);
    let buffer = vec![1u8; mib << 20];
    text(200, &std::hint::black_box(buffer).len().to_string())
}

/// A body of `kib` KiB of `x`, far more than the host buffers before hyper reads it: the
/// guest is still writing it after its response head has gone out.
fn big_body(_: Request, params: Params) -> Response {
    let kib: usize = params.get("kib").and_then(|k| k.parse().ok()).unwrap_or(1);
    text(200, &"x".repeat(kib << 10))
}

fn echo_spin_headers(req: Request, _: Params) -> Response {
    let headers: serde_json::Map<String, serde_json::Value> = req
        .headers()
        .filter(|(name, _)| name.starts_with("spin-") || *name == "host" || *name == "traceparent")
        .map(|(name, value)| (name.to_owned(), value.as_str().unwrap_or("").into()))
        .collect();
    text(200, &serde_json::Value::Object(headers).to_string())
}

fn read_variable(_: Request, params: Params) -> Response {
    match spin_sdk::variables::get(params.get("name").unwrap_or("")) {
        Ok(value) => text(200, &value),
        Err(e) => text(404, &format!("{e:?}")),
    }
}

fn use_sqlite(_: Request, params: Params) -> Response {
    use spin_sdk::sqlite3::{Connection, Value};
    let label = params.get("label").unwrap_or("default");
    let run = || -> Result<i64, spin_sdk::sqlite3::Error> {
        let conn = Connection::open(label)?;
        conn.execute("CREATE TABLE IF NOT EXISTS hits (n INTEGER)", &[])?;
        conn.execute("INSERT INTO hits (n) VALUES (?)", &[Value::Integer(1)])?;
        let rows = conn.execute("SELECT COUNT(*) AS n FROM hits", &[])?;
        Ok(rows
            .rows()
            .next()
            .and_then(|r| r.get::<i64>("n"))
            .unwrap_or(-1))
    };
    match run() {
        Ok(count) => text(200, &count.to_string()),
        Err(e) => text(403, &format!("{e:?}")),
    }
}

fn use_key_value(_: Request, params: Params) -> Response {
    let label = params.get("label").unwrap_or("default");
    let run = || -> anyhow::Result<String> {
        let store = spin_sdk::key_value::Store::open(label)?;
        let n = store
            .get("counter")?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
        store.set("counter", n.to_string().as_bytes())?;
        Ok(n.to_string())
    };
    match run() {
        Ok(n) => text(200, &n),
        Err(e) => text(403, &format!("{e:?}")),
    }
}

async fn fetch_outbound(req: Request, _: Params) -> Response {
    let url = req.query().strip_prefix("url=").unwrap_or("").to_owned();
    let outbound = Request::get(url);
    match spin_sdk::http::send::<_, Response>(outbound).await {
        Ok(resp) => text(200, &format!("upstream status {}", resp.status())),
        Err(e) => text(502, &format!("{e:?}")),
    }
}

fn read_file(req: Request, _: Params) -> Response {
    let path = req
        .header("spin-path-info")
        .and_then(|h| h.as_str())
        .unwrap_or("")
        .trim_start_matches("/file")
        .to_owned();
    match std::fs::read_to_string(&path) {
        Ok(contents) => text(200, &contents),
        Err(e) => text(404, &format!("{path}: {e}")),
    }
}

/// Messages this instance has handled: 1 on every message of a fresh instance, counting
/// up in one that the host reuses (`--reuse-instances`).
static HANDLED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Records every Redis message in sqlite so tests can see what arrived, in what order,
/// and as which message of its instance.
#[redis_component]
fn on_message(message: bytes::Bytes) -> anyhow::Result<()> {
    use spin_sdk::sqlite3::{Connection, Value};
    let nth = HANDLED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    let conn = Connection::open("default")?;
    conn.execute(
        "CREATE TABLE IF NOT EXISTS received (seq INTEGER PRIMARY KEY, body TEXT, nth INTEGER)",
        &[],
    )?;
    let body = String::from_utf8_lossy(&message).into_owned();
    if body == "trap" {
        panic!("trap requested by message");
    }
    // A handler still running when the host is asked to stop (shutdown drains it).
    if body.starts_with("slow") {
        std::thread::sleep(std::time::Duration::from_millis(1500));
    }
    conn.execute(
        "INSERT INTO received (body, nth) VALUES (?, ?)",
        &[Value::Text(body.clone()), Value::Integer(nth.into())],
    )?;
    // A handler that returns with its connection still open, as one that leaves closing
    // to a garbage collector does.
    if body == "keep-open" {
        std::mem::forget(conn);
    }
    Ok(())
}

fn list_received(req: Request, _: Params) -> Response {
    use spin_sdk::sqlite3::Connection;
    // `?nth`: each body with the instance's message count, `body@nth`.
    let with_nth = req.query().contains("nth");
    let run = || -> Result<Vec<String>, spin_sdk::sqlite3::Error> {
        let conn = Connection::open("default")?;
        conn.execute(
            "CREATE TABLE IF NOT EXISTS received (seq INTEGER PRIMARY KEY, body TEXT, nth INTEGER)",
            &[],
        )?;
        let rows = conn.execute("SELECT body, nth FROM received ORDER BY seq", &[])?;
        Ok(rows
            .rows()
            .filter_map(|r| {
                let body = r.get::<&str>("body")?;
                Some(match r.get::<i64>("nth") {
                    Some(nth) if with_nth => format!("{body}@{nth}"),
                    _ => body.to_owned(),
                })
            })
            .collect())
    };
    match run() {
        Ok(bodies) => text(200, &bodies.join(",")),
        Err(e) => text(500, &format!("{e:?}")),
    }
}

fn publish_to_redis(_: Request, params: Params) -> Response {
    let address = spin_sdk::variables::get("redis_address").unwrap_or_default();
    let channel = params.get("channel").unwrap_or("none");
    let message = params.get("message").unwrap_or("");
    let result = spin_sdk::redis::Connection::open(&address)
        .and_then(|c| c.publish(channel, message.as_bytes()));
    match result {
        Ok(()) => text(200, "published"),
        Err(e) => text(502, &format!("{e:?}")),
    }
}

/// The `addr=` query parameter: the database or broker address, as given.
fn addr(req: &Request) -> String {
    req.query().strip_prefix("addr=").unwrap_or("").to_owned()
}

fn reply(result: Result<String, String>) -> Response {
    match result {
        Ok(body) => text(200, &body),
        Err(e) => text(502, &e),
    }
}

/// Creates a table, inserts a row and reads it back through one postgres WIT version;
/// the body is the row (and, for 4.0.0, a failed query's structured error).
fn use_postgres(req: Request, params: Params) -> Response {
    let address = addr(&req);
    reply(match params.get("version").unwrap_or("4") {
        "2" => postgres_v2(&address),
        "3" => postgres_v3(&address),
        _ => postgres_v4(&address),
    })
}

fn postgres_v4(address: &str) -> Result<String, String> {
    use spin_sdk::pg4::{Connection, ParameterValue as P};
    let db = Connection::open(address).map_err(|e| format!("{e:?}"))?;
    let e = |e| format!("{e:?}");
    db.execute(
        "CREATE TABLE IF NOT EXISTS notes_v4 (id SERIAL PRIMARY KEY, body TEXT NOT NULL, at TIMESTAMP, tag UUID, doc JSONB, nums INT4[])",
        &[],
    )
    .map_err(e)?;
    let inserted = db
        .execute(
            "INSERT INTO notes_v4 (body, at, tag, doc, nums) VALUES ($1, $2, $3, $4, $5)",
            &[
                P::Str("hello v4".into()),
                P::Datetime((2026, 11, 29, 12, 30, 0, 0)),
                P::Uuid("6f1c1a52-6c1e-4a5e-9d43-2a4c1b7e0f00".into()),
                P::Jsonb(br#"{"a":1}"#.to_vec()),
                P::ArrayInt32(vec![Some(1), None, Some(3)]),
            ],
        )
        .map_err(e)?;
    let rows = db
        .query(
            "SELECT body, at, tag, doc, nums, NULL::text AS nothing FROM notes_v4 ORDER BY id DESC LIMIT 1",
            &[],
        )
        .map_err(e)?;
    let failed = db.query("SELECT * FROM no_such_table", &[]).map(|_| ());
    Ok(format!(
        "inserted={inserted} row={:?} failed={failed:?}",
        rows.rows[0]
    ))
}

fn postgres_v3(address: &str) -> Result<String, String> {
    use spin_sdk::pg3::{Connection, ParameterValue as P};
    let db = Connection::open(address).map_err(|e| format!("{e:?}"))?;
    let e = |e| format!("{e:?}");
    db.execute(
        "CREATE TABLE IF NOT EXISTS notes_v3 (id SERIAL PRIMARY KEY, body TEXT NOT NULL, day DATE)",
        &[],
    )
    .map_err(e)?;
    db.execute(
        "INSERT INTO notes_v3 (body, day) VALUES ($1, $2)",
        &[P::Str("hello v3".into()), P::Date((2026, 11, 29))],
    )
    .map_err(e)?;
    let rows = db
        .query(
            "SELECT body, day, COUNT(*) OVER () AS n FROM notes_v3 ORDER BY id DESC LIMIT 1",
            &[],
        )
        .map_err(e)?;
    Ok(format!("row={:?}", rows.rows[0]))
}

fn postgres_v2(address: &str) -> Result<String, String> {
    use spin_sdk::pg::{Connection, ParameterValue as P};
    let db = Connection::open(address).map_err(|e| format!("{e:?}"))?;
    let e = |e| format!("{e:?}");
    db.execute(
        "CREATE TABLE IF NOT EXISTS notes_v2 (id SERIAL PRIMARY KEY, body TEXT NOT NULL)",
        &[],
    )
    .map_err(e)?;
    db.execute(
        "INSERT INTO notes_v2 (body) VALUES ($1)",
        &[P::Str("hello v2".into())],
    )
    .map_err(e)?;
    let rows = db
        .query(
            "SELECT body, id FROM notes_v2 ORDER BY id DESC LIMIT 1",
            &[],
        )
        .map_err(e)?;
    Ok(format!("row={:?}", rows.rows[0]))
}

fn use_mysql(req: Request, _: Params) -> Response {
    use spin_sdk::mysql::{Connection, ParameterValue as P};
    let run = || -> Result<String, String> {
        let e = |e| format!("{e:?}");
        let db = Connection::open(&addr(&req)).map_err(e)?;
        db.execute(
            "CREATE TABLE IF NOT EXISTS notes (id INT AUTO_INCREMENT PRIMARY KEY, body VARCHAR(100) NOT NULL, n BIGINT UNSIGNED, raw VARBINARY(8))",
            &[],
        )
        .map_err(e)?;
        db.execute(
            "INSERT INTO notes (body, n, raw) VALUES (?, ?, ?)",
            &[
                P::Str("hello mysql".into()),
                P::Uint64(42),
                P::Binary(vec![0, 1, 2]),
            ],
        )
        .map_err(e)?;
        let rows = db
            .query(
                "SELECT body, n, raw FROM notes ORDER BY id DESC LIMIT 1",
                &[],
            )
            .map_err(e)?;
        let failed = db.query("SELECT * FROM no_such_table", &[]).map(|_| ());
        Ok(format!("row={:?} failed={failed:?}", rows.rows[0]))
    };
    reply(run())
}

fn publish_mqtt(req: Request, params: Params) -> Response {
    use spin_sdk::mqtt::{Connection, Qos};
    let topic = params.get("topic").unwrap_or("none").to_owned();
    let run = || -> Result<String, String> {
        let e = |e| format!("{e:?}");
        let conn = Connection::open(&addr(&req), "", "", 30).map_err(e)?;
        conn.publish(&topic, b"hello mqtt".as_ref(), Qos::AtLeastOnce)
            .map_err(e)?;
        Ok("published".into())
    };
    reply(run())
}

fn use_llm(_: Request, _: Params) -> Response {
    let result = spin_sdk::llm::infer(spin_sdk::llm::InferencingModel::Llama2Chat, "hi");
    match result {
        Ok(r) => text(200, &r.text),
        Err(e) => text(503, &format!("{e:?}")),
    }
}
