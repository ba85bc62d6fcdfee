//! The components written in other languages, over real HTTP and real Redis: the activity
//! feed (Python, `GET /api/activity`) and ticket search (TypeScript, `GET /api/search`).

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tessera_blackbox::marketplace::{Marketplace, body, envelope, eventually, messages};
use tessera_blackbox::session::{USER_ID, bad_tokens, now, signed, valid_token};

const DEADLINE: Duration = Duration::from_secs(20);

/// The `type`s of `client`'s activity feed, newest first.
async fn feed(m: &Marketplace, client: &Client) -> Vec<Value> {
    let resp = m.get(client, "/api/activity").await;
    assert_eq!(resp.status(), StatusCode::OK);
    body(resp).await.as_array().expect("an array").clone()
}

fn types(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Polls the feed until it holds exactly `want` types, newest first.
async fn feed_becomes(m: &Marketplace, client: &Client, want: &[&str]) -> Vec<Value> {
    eventually(&format!("the feed {want:?}"), DEADLINE, || async {
        let entries = feed(m, client).await;
        (types(&entries) == want).then_some(entries)
    })
    .await
}

/// The ids `GET /api/search?q=` finds.
async fn found(m: &Marketplace, q: &str) -> Vec<String> {
    let resp = m
        .get(&Client::new(), &format!("/api/search?q={}", urlencode(q)))
        .await;
    assert_eq!(resp.status(), StatusCode::OK, "search {q}");
    body(resp)
        .await
        .as_array()
        .expect("an array")
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn search_finds(m: &Marketplace, q: &str, id: &str, want: bool) {
    eventually(
        &format!(
            "search {q:?} to {}find {id}",
            if want { "" } else { "not " }
        ),
        DEADLINE,
        || async { (found(m, q).await.contains(&id.to_owned()) == want).then_some(()) },
    )
    .await;
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn sign_up_with_id(m: &Marketplace, email: &str) -> (Client, String) {
    let client = m.client();
    let id = m.sign_up(&client, email).await;
    (client, id)
}

#[tokio::test]
async fn a_purchase_shows_in_the_buyers_and_the_sellers_feed() {
    let m = Marketplace::start();
    let (seller, _) = sign_up_with_id(&m, "seller@example.com").await;
    let ticket = m.sell(&seller, "Jazz Night", 12.5).await;
    let ticket_id = ticket["id"].as_str().unwrap().to_owned();
    let (buyer, buyer_id) = sign_up_with_id(&m, "buyer@example.com").await;
    let (status, order) = m.order_when_known(&buyer, &ticket_id).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let order_id = order["id"].as_str().unwrap().to_owned();
    feed_becomes(&m, &buyer, &["reserved"]).await;
    feed_becomes(&m, &seller, &["reserved"]).await;

    let (status, paid) = m.pay(&buyer, &order_id, Some("pm_card_visa")).await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");

    let mine = feed_becomes(&m, &buyer, &["paid", "reserved"]).await;
    assert_eq!(mine[0]["message"], "You paid $12.50 for Jazz Night");
    assert_eq!(mine[1]["message"], "You reserved Jazz Night for $12.50");
    for entry in &mine {
        assert_eq!(entry["role"], "buyer");
        assert_eq!(entry["orderId"], order_id.as_str());
        assert_eq!(entry["ticketId"], ticket_id.as_str());
        assert_eq!(entry["title"], "Jazz Night");
        assert_eq!(
            (entry["price"].clone(), entry["priceCents"].clone()),
            (json!(12.5), json!(1250))
        );
    }
    let theirs = feed_becomes(&m, &seller, &["sold", "reserved"]).await;
    assert_eq!(
        theirs[0]["message"],
        "Your ticket Jazz Night was sold for $12.50"
    );
    assert_eq!(theirs[1]["message"], "Your ticket Jazz Night was reserved");
    assert!(theirs.iter().all(|e| e["role"] == "seller"));

    // Nobody else sees them; a third user's feed is empty.
    let (other, _) = sign_up_with_id(&m, "other@example.com").await;
    assert_eq!(feed(&m, &other).await, Vec::<Value>::new());
    assert_ne!(buyer_id, "");

    // Pages: newest first, one at a time, the cursor in `x-next-cursor`.
    let resp = m.get(&buyer, "/api/activity?limit=1").await;
    let cursor = resp.headers()["x-next-cursor"].to_str().unwrap().to_owned();
    assert_eq!(types(body(resp).await.as_array().unwrap()), ["paid"]);
    let resp = m
        .get(&buyer, &format!("/api/activity?limit=1&cursor={cursor}"))
        .await;
    assert!(
        resp.headers().get("x-next-cursor").is_none(),
        "the last page"
    );
    assert_eq!(types(body(resp).await.as_array().unwrap()), ["reserved"]);
}

#[tokio::test]
async fn an_expired_order_shows_in_the_feed() {
    let m = Marketplace::start_with(&[("SPIN_VARIABLE_ORDER_LOCK_SECONDS", "2")]);
    let deal = m.ordered_ticket(7.0).await;
    let entries = eventually("the order to expire in the feed", DEADLINE, || async {
        let entries = feed(&m, &deal.buyer).await;
        (types(&entries) == ["expired", "reserved"]).then_some(entries)
    })
    .await;
    assert_eq!(entries[0]["message"], "Your order for Concert expired");
    assert_eq!(entries[0]["orderId"], deal.order_id.as_str());

    // A cancellation by the buyer is told apart from an expiry.
    let m = Marketplace::start();
    let deal = m.ordered_ticket(8.0).await;
    feed_becomes(&m, &deal.buyer, &["reserved"]).await;
    assert_eq!(
        m.cancel(&deal.buyer, &deal.order_id).await,
        StatusCode::NO_CONTENT
    );
    let entries = feed_becomes(&m, &deal.buyer, &["cancelled", "reserved"]).await;
    assert_eq!(
        entries[0]["message"],
        "Your order for Concert was cancelled"
    );
}

#[tokio::test]
async fn search_finds_available_tickets_only() {
    let m = Marketplace::start();
    let (seller, _) = sign_up_with_id(&m, "seller@example.com").await;
    let id = m.sell_id(&seller, "Berlin Philharmonic Gala", 80.0).await;
    let other = m.sell_id(&seller, "Berlin Marathon", 20.0).await;
    // Found within the event propagation time, by a word, a prefix, or several words.
    search_finds(&m, "philharmonic", &id, true).await;
    let resp = m.get(&Client::new(), "/api/search?q=PHILHARMONIC").await;
    // JavaScript writes 80, not 80.0: the same JSON number.
    let hits = body(resp).await;
    assert_eq!(
        hits,
        json!([{"id": id, "title": "Berlin Philharmonic Gala", "price": 80, "priceCents": 8000}])
    );
    assert_eq!(found(&m, "philh gala").await, std::slice::from_ref(&id));
    search_finds(&m, "berlin", &other, true).await;
    assert_eq!(found(&m, "berlin").await.len(), 2);
    // Pages by `x-next-cursor`.
    let resp = m.get(&Client::new(), "/api/search?q=berlin&limit=1").await;
    let cursor = resp.headers()["x-next-cursor"].to_str().unwrap().to_owned();
    let first = body(resp).await;
    let resp = m
        .get(
            &Client::new(),
            &format!("/api/search?q=berlin&limit=1&cursor={cursor}"),
        )
        .await;
    assert!(resp.headers().get("x-next-cursor").is_none());
    let second = body(resp).await;
    assert_ne!(first[0]["id"], second[0]["id"]);

    // An edit is searchable by its new title.
    let (status, _) = m
        .put_json(
            &seller,
            &format!("/api/tickets/{id}"),
            json!({"title": "Vienna Philharmonic Gala", "price": 80}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    search_finds(&m, "vienna", &id, true).await;
    search_finds(&m, "berlin philharmonic", &id, false).await;

    // Reserved: gone. Cancelled: back. Sold: gone.
    let (buyer, _) = sign_up_with_id(&m, "buyer@example.com").await;
    let (status, order) = m.order_when_known(&buyer, &id).await;
    assert_eq!(status, StatusCode::CREATED);
    search_finds(&m, "vienna", &id, false).await;
    let order_id = order["id"].as_str().unwrap();
    assert_eq!(m.cancel(&buyer, order_id).await, StatusCode::NO_CONTENT);
    search_finds(&m, "vienna", &id, true).await;
    let (status, order) = m.order_when_known(&buyer, &id).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let (status, paid) = m
        .pay(&buyer, order["id"].as_str().unwrap(), Some("pm_card_visa"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    search_finds(&m, "vienna", &id, false).await;
    assert!(found(&m, "berlin").await.contains(&other));
}

#[tokio::test]
async fn duplicate_and_out_of_order_events_change_nothing() {
    let m = Marketplace::start();
    let (seller, seller_id) = sign_up_with_id(&m, "seller@example.com").await;
    let (buyer, buyer_id) = sign_up_with_id(&m, "buyer@example.com").await;
    let ticket = "7e57a1c2-0000-4000-8000-00000000a001";
    let order = "7e57a1c2-0000-4000-8000-00000000b001";
    let updated = |version: u64, title: &str, order_id: Value| {
        envelope(
            "ticket:updated",
            json!({"id": ticket, "version": version, "title": title, "price_cents": 4200,
                   "user_id": seller_id, "order_id": order_id}),
        )
    };
    let created = envelope(
        "ticket:created",
        json!({"id": ticket, "version": 0, "title": "Original Opera", "price_cents": 4200, "user_id": seller_id}),
    );
    let order_created = envelope(
        "order:created",
        json!({"id": order, "version": 0, "status": "created", "user_id": buyer_id,
               "expires_at": "2099-01-01T00:00:00Z", "ticket": {"id": ticket, "price_cents": 4200}}),
    );
    let cancelled = envelope(
        "order:cancelled",
        json!({"id": order, "version": 1, "ticket": {"id": ticket}}),
    );

    // Newest first: the ticket released at version 2, its cancellation before the order.
    m.redis
        .publish("ticket:updated", &updated(2, "Newest Opera", Value::Null));
    m.redis.publish("order:cancelled", &cancelled);
    m.redis.publish("ticket:created", &created);
    m.redis.publish("order:created", &order_created);
    // Stale and duplicated: an older reservation, the create and the cancel again.
    m.redis
        .publish("ticket:updated", &updated(1, "Stale Opera", json!(order)));
    m.redis.publish("ticket:created", &created);
    m.redis.publish("order:created", &order_created);
    m.redis.publish("order:cancelled", &cancelled);
    m.redis.publish("order:created", "{not json");
    m.redis.publish(
        "ticket:created",
        &envelope("ticket:created", json!({"id": 5, "version": "zero"})),
    );

    // A marker after them: once search and activity show it, they handled the rest too.
    let marker = m.sell_id(&seller, "Marker Ballet", 1.0).await;
    search_finds(&m, "marker", &marker, true).await;
    let (status, marker_order) = m.order_when_known(&buyer, &marker).await;
    assert_eq!(status, StatusCode::CREATED, "{marker_order}");
    feed_becomes(&m, &buyer, &["reserved", "cancelled", "reserved"]).await;

    // Search: the newest version (released, "Newest Opera") and nothing of the stale one.
    search_finds(&m, "newest opera", ticket, true).await;
    assert_eq!(found(&m, "stale").await, Vec::<String>::new());
    assert_eq!(found(&m, "original").await, Vec::<String>::new());
    // Activity: one reservation and one cancellation of the order, titled by the newest
    // version; the cancellation sorts after the reservation whatever the arrival order.
    let entries = feed(&m, &buyer).await;
    let ours: Vec<&Value> = entries.iter().filter(|e| e["orderId"] == order).collect();
    assert_eq!(ours.len(), 2, "{entries:?}");
    assert!(
        ours.iter().all(|e| e["title"] == "Newest Opera"),
        "{ours:?}"
    );
    let theirs = feed(&m, &seller).await;
    assert_eq!(
        theirs.iter().filter(|e| e["orderId"] == order).count(),
        2,
        "the seller's entries, once each: {theirs:?}"
    );

    // A duplicate of a real event, after the fact, adds nothing either.
    m.redis.publish("order:created", &order_created);
    m.redis.publish("order:cancelled", &cancelled);
    let again = m.sell_id(&seller, "Second Marker", 1.0).await;
    search_finds(&m, "second marker", &again, true).await;
    assert_eq!(types(&feed(&m, &buyer).await), types(&entries));
}

async fn get_with(m: &Marketplace, path: &str, cookie: Option<&str>) -> (StatusCode, String) {
    let mut request = Client::new().get(m.url(path));
    if let Some(cookie) = cookie {
        request = request.header("cookie", format!("session={cookie}"));
    }
    let resp = request.send().await.unwrap();
    let status = resp.status();
    (status, resp.text().await.unwrap())
}

#[tokio::test]
async fn bad_queries_and_forged_cookies_get_json_errors() {
    let m = Marketplace::start();
    let valid = valid_token();
    let (status, text) = get_with(&m, "/api/activity", Some(&valid)).await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::OK, "[]"),
        "control: a valid token"
    );

    let no_exp = signed(&json!({"id": USER_ID, "email": "e@x.io", "iat": now()}));
    let cases = bad_tokens()
        .into_iter()
        .map(|(name, token)| (name, Some(token)))
        .chain([
            ("missing", None),
            ("no exp", Some(no_exp)),
            ("non-ascii", Some("%C3%A9.%C3%A9.%C3%A9".to_owned())),
        ]);
    for (name, cookie) in cases {
        let (status, text) = get_with(&m, "/api/activity", cookie.as_deref()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {text}");
        let error: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            error,
            json!({"errors": [{"message": "Not authorized"}]}),
            "{name}"
        );
    }

    let cases = [
        (
            "/api/activity?limit=0",
            Some(valid.as_str()),
            "Limit must be a whole number between 1 and 100",
        ),
        (
            "/api/activity?limit=abc",
            Some(&valid),
            "Limit must be a whole number between 1 and 100",
        ),
        ("/api/activity?cursor=-1", Some(&valid), "Cursor is invalid"),
        ("/api/search", None, "Query is required"),
        ("/api/search?q=", None, "Query is required"),
        ("/api/search?q=%22%28%2A%29%3A", None, "Query is required"),
        (
            "/api/search?q=a&limit=101",
            None,
            "Limit must be a whole number between 1 and 100",
        ),
        ("/api/search?q=a&cursor=x", None, "Cursor is invalid"),
    ];
    for (path, cookie, message) in cases {
        let (status, text) = get_with(&m, path, cookie).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {text}");
        let error: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(messages(&error), [message], "{path}");
    }
    let long = "a".repeat(201);
    let (status, text) = get_with(&m, &format!("/api/search?q={long}"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    // FTS5 syntax in a query is just words.
    for q in [
        "NEAR(a b)",
        "a OR b",
        "\"unbalanced",
        "title:x",
        "a*",
        "-x",
        "^x",
        "{}",
    ] {
        let (status, text) = get_with(&m, &format!("/api/search?q={}", urlencode(q)), None).await;
        assert!(
            status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
            "{q}: {status} {text}"
        );
        assert!(
            text.starts_with('[') || text.contains("\"errors\""),
            "{q}: {text}"
        );
    }
    // Unknown routes and methods: the JSON 404.
    let client = Client::new();
    m.assert_json_404s(
        &client,
        &[
            (reqwest::Method::GET, "/api/activity/x"),
            (reqwest::Method::POST, "/api/activity"),
            (reqwest::Method::GET, "/api/search/x"),
            (reqwest::Method::DELETE, "/api/search?q=a"),
        ],
    )
    .await;
}
