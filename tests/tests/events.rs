//! Tickets and orders talking through Redis events: the Tickets, Orders and Events
//! sections of the contract, over real HTTP and real Redis.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_blackbox::marketplace::{
    Marketplace, assert_one_winner, body, envelope, eventually, messages,
};

const DEADLINE: Duration = Duration::from_secs(20);

async fn ticket(m: &Marketplace, id: &str) -> Value {
    let resp = m
        .get(&reqwest::Client::new(), &format!("/api/tickets/{id}"))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    body(resp).await
}

async fn listed_ids(m: &Marketplace) -> Vec<String> {
    let list = body(m.get(&reqwest::Client::new(), "/api/tickets").await).await;
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn reserving_and_releasing_a_ticket_moves_versions_as_the_contract_says() {
    let m = Marketplace::start();
    let seller = m.client();
    m.sign_up(&seller, "seller@example.com").await;
    let created = m.sell(&seller, "  Concert  ", 10.99).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["title"], "Concert");
    assert_eq!(
        (created["price"].clone(), created["priceCents"].clone()),
        (json!(10.99), json!(1099))
    );
    assert_eq!(created["version"], 0);
    assert!(created.get("orderId").is_none());
    assert!(listed_ids(&m).await.contains(&id));

    let buyer = m.client();
    let buyer_id = m.sign_up(&buyer, "buyer@example.com").await;
    let (status, order) = m.order_when_known(&buyer, &id).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["status"], "created");
    assert_eq!(order["userId"], buyer_id.as_str());
    assert_eq!(order["ticket"]["id"], id.as_str());
    assert_eq!(order["ticket"]["priceCents"], 1099);
    let order_id = order["id"].as_str().unwrap().to_owned();

    // order:created → tickets reserves: orderId set, version 1, gone from the list.
    let reserved = eventually("the ticket to be reserved", DEADLINE, || async {
        let t = ticket(&m, &id).await;
        (t["orderId"] == order_id.as_str()).then_some(t)
    })
    .await;
    assert_eq!(reserved["version"], 1);
    assert!(
        !listed_ids(&m).await.contains(&id),
        "a reserved ticket is not listed"
    );

    let edit = m
        .put_json(
            &seller,
            &format!("/api/tickets/{id}"),
            json!({"title": "New", "price": 5}),
        )
        .await;
    assert_eq!(edit.0, StatusCode::BAD_REQUEST);
    assert_eq!(messages(&edit.1), ["Cannot edit a reserved ticket"]);

    // Cancelling releases it: version 2, listed again.
    assert_eq!(m.cancel(&buyer, &order_id).await, StatusCode::NO_CONTENT);
    let cancelled = body(m.get(&buyer, &format!("/api/orders/{order_id}")).await).await;
    assert_eq!(
        (cancelled["status"].clone(), cancelled["version"].clone()),
        (json!("cancelled"), json!(1))
    );
    let released = eventually("the ticket to be released", DEADLINE, || async {
        let t = ticket(&m, &id).await;
        t.get("orderId").is_none().then_some(t)
    })
    .await;
    assert_eq!(released["version"], 2);
    assert!(listed_ids(&m).await.contains(&id));

    // The owner can edit again (version 3), and the orders replica converges on it.
    let (status, edited) = m
        .put_json(
            &seller,
            &format!("/api/tickets/{id}"),
            json!({"title": "Concert (moved)", "price": 12}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (edited["version"].clone(), edited["priceCents"].clone()),
        (json!(3), json!(1200))
    );
    // Until the replica has the edit, an order shows the old ticket: cancel and retry
    // (each retry moves the version on, so only title and price are compared).
    let second = eventually("the replica to see the edit", DEADLINE, || async {
        let (status, order) = m.order_when_known(&buyer, &id).await;
        if status != StatusCode::CREATED {
            return None;
        }
        if order["ticket"]["title"] == "Concert (moved)" {
            return Some(order);
        }
        let oid = order["id"].as_str().unwrap().to_owned();
        buyer
            .delete(m.url(&format!("/api/orders/{oid}")))
            .send()
            .await
            .unwrap();
        None
    })
    .await;
    assert_eq!(second["ticket"]["priceCents"], 1200);
    assert!(second["ticket"]["version"].as_u64().unwrap() >= 3);
    assert_eq!(second["ticket"]["title"], "Concert (moved)");
}

#[tokio::test]
async fn a_writes_event_goes_out_after_its_response_with_no_later_request() {
    let m = Marketplace::start();
    let seller = m.client();
    m.sign_up(&seller, "seller@example.com").await;
    let buyer = m.client();
    m.sign_up(&buyer, "buyer@example.com").await;

    // tickets relays its outbox after the response (common::http::after_response). No
    // other request or message reaches tickets from here on (no order exists, so none of
    // its channels carries anything), so only that relay can publish ticket:created.
    let id = m.sell_id(&seller, "Relayed after the response", 10.0).await;
    m.order_the_moment_known(&buyer, &id).await;
}

#[tokio::test]
async fn of_fifty_concurrent_orders_for_one_ticket_exactly_one_wins() {
    let m = Marketplace::start();
    let seller = m.client();
    m.sign_up(&seller, "seller@example.com").await;
    let id = m.sell_id(&seller, "Final", 99.0).await;
    let buyers: Vec<reqwest::Client> = futures::future::join_all((0..50).map(|i| {
        let m = &m;
        async move {
            let c = m.client();
            m.sign_up(&c, &format!("buyer{i}@example.com")).await;
            c
        }
    }))
    .await;
    // Make sure orders knows the ticket, then free it again, so all 50 race on equal terms.
    let (status, probe) = m.order_when_known(&buyers[0], &id).await;
    assert_eq!(status, StatusCode::CREATED, "{probe}");
    let probe_id = probe["id"].as_str().unwrap();
    assert_eq!(m.cancel(&buyers[0], probe_id).await, StatusCode::NO_CONTENT);

    let attempts = buyers.iter().map(|c| {
        let url = m.url("/api/orders");
        let id = id.clone();
        async move {
            let resp = c
                .post(url)
                .json(&json!({"ticketId": id}))
                .send()
                .await
                .unwrap();
            let status = resp.status();
            (status, body(resp).await)
        }
    });
    let results = futures::future::join_all(attempts).await;
    assert_one_winner(&results, "Ticket is already reserved");
}

#[tokio::test]
async fn duplicate_and_out_of_order_deliveries_change_nothing_twice() {
    let m = Marketplace::start();
    let seller = m.client();
    let seller_id = m.sign_up(&seller, "seller@example.com").await;
    let buyer = m.client();
    m.sign_up(&buyer, "buyer@example.com").await;

    // Orders' replica: an update that arrives before its create is applied; the late
    // create and an older update are then ignored.
    let ghost = "4d1c1b0e-7f7a-4c47-9d5e-0c5c2f6b9a11";
    let updated = |version: u64, title: &str| {
        envelope(
            "ticket:updated",
            json!({"id": ghost, "version": version, "title": title, "price_cents": 500, "user_id": seller_id, "order_id": null}),
        )
    };
    m.redis.publish("ticket:updated", &updated(2, "Newest"));
    m.redis.publish("ticket:created", &envelope("ticket:created", json!({"id": ghost, "version": 0, "title": "Original", "price_cents": 500, "user_id": seller_id})));
    m.redis.publish("ticket:updated", &updated(1, "Stale"));
    m.redis.publish("ticket:updated", &updated(2, "Newest"));
    let (status, order) = m.order_when_known(&buyer, ghost).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    // All four messages were published before the order; give stragglers a moment by
    // re-reading after the tickets service has certainly processed its own events.
    let order_id = order["id"].as_str().unwrap().to_owned();
    let seen = body(m.get(&buyer, &format!("/api/orders/{order_id}")).await).await;
    assert_eq!(
        (
            seen["ticket"]["title"].clone(),
            seen["ticket"]["version"].clone()
        ),
        (json!("Newest"), json!(2))
    );

    // Tickets: a duplicated order:created reserves once (version 1, not 2).
    let id = m.sell_id(&seller, "Play", 20.0).await;
    let (status, order) = m.order_when_known(&buyer, &id).await;
    assert_eq!(status, StatusCode::CREATED);
    let order_id = order["id"].as_str().unwrap().to_owned();
    let reserved = eventually("the reservation", DEADLINE, || async {
        let t = ticket(&m, &id).await;
        (t["orderId"] == order_id.as_str()).then_some(t)
    })
    .await;
    assert_eq!(reserved["version"], 1);
    // The same event again: same version and deadline (a stale deadline in the past
    // would be another event, and expiration would expire the order at once).
    let duplicate = envelope(
        "order:created",
        json!({
            "id": order_id, "version": 0, "status": "created", "user_id": order["userId"],
            "expires_at": order["expiresAt"], "ticket": {"id": id, "price_cents": 2000}
        }),
    );
    m.redis.publish("order:created", &duplicate);
    m.redis.publish("order:created", &duplicate);
    // A stale cancel for some other order must not free a ticket it does not hold.
    let foreign_cancel = envelope(
        "order:cancelled",
        json!({"id": "a-different-order", "version": 1, "ticket": {"id": id}}),
    );
    m.redis.publish("order:cancelled", &foreign_cancel);
    // Garbage on a channel is logged and skipped.
    m.redis.publish("order:created", "{not json");
    // A marker event after them: once it is applied, the earlier ones were handled too.
    let marker = m.sell_id(&seller, "Marker", 1.0).await;
    let (status, marker_order) = m.order_when_known(&buyer, &marker).await;
    assert_eq!(status, StatusCode::CREATED);
    let marker_order_id = marker_order["id"].as_str().unwrap().to_owned();
    eventually("the marker reservation", DEADLINE, || async {
        (ticket(&m, &marker).await["orderId"] == marker_order_id.as_str()).then_some(())
    })
    .await;
    let after = ticket(&m, &id).await;
    assert_eq!(
        (after["version"].clone(), after["orderId"].clone()),
        (json!(1), json!(order_id)),
        "effects happened once"
    );
}

#[tokio::test]
async fn events_survive_a_redis_outage_through_the_outbox() {
    let mut m = Marketplace::start();
    let seller = m.client();
    m.sign_up(&seller, "seller@example.com").await;
    let buyer = m.client();
    m.sign_up(&buyer, "buyer@example.com").await;

    m.redis.stop();
    // Writes succeed while Redis is down: the event waits in the outbox.
    let created = m
        .post(
            &seller,
            "/api/tickets",
            json!({"title": "Outage", "price": 30}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = body(created).await["id"].as_str().unwrap().to_owned();
    let subscribed_before = m.app.logs().matches("Subscribed to").count();

    m.redis.restart();
    // Wait for the subscribers to be back, then any activity relays the backlog.
    eventually(
        "the subscribers to reconnect",
        Duration::from_secs(20),
        || async {
            (m.app.logs().matches("Subscribed to").count() > subscribed_before).then_some(())
        },
    )
    .await;
    let (status, order) = order_relaying_tickets(&m, &seller, &buyer, &id).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the ticket created during the outage reached orders: {order}"
    );
    assert!(
        !m.app.logs().contains("status=5"),
        "no 5xx during the outage:\n{}",
        m.app.logs()
    );
}

/// Orders `ticket_id` as `buyer` once orders knows it. Each try first asks tickets for
/// something, since any tickets request relays its outbox: right after a Redis restart
/// the relay holds events back (common::outbox::REDIS_SETTLE_SECONDS) until the
/// subscribers are surely back, so the backlog goes out on a later request.
async fn order_relaying_tickets(
    m: &Marketplace,
    seller: &reqwest::Client,
    buyer: &reqwest::Client,
    ticket_id: &str,
) -> (StatusCode, Value) {
    eventually(
        "the ticket to reach the orders service",
        DEADLINE,
        || async {
            let _ = m.get(seller, "/api/tickets").await;
            let resp = m
                .post(buyer, "/api/orders", json!({"ticketId": ticket_id}))
                .await;
            let status = resp.status();
            (status != StatusCode::NOT_FOUND).then_some((status, body(resp).await))
        },
    )
    .await
}

#[tokio::test]
async fn an_event_relayed_right_after_a_redis_restart_still_reaches_its_subscribers() {
    let mut m = Marketplace::start();
    let seller = m.client();
    m.sign_up(&seller, "seller@example.com").await;
    let buyer = m.client();
    m.sign_up(&buyer, "buyer@example.com").await;
    // tickets has published to this Redis before (so it knows Redis's run): its relay
    // runs after the response, so wait until orders has the ticket.
    let before = m.sell_id(&seller, "Before the restart", 11.0).await;
    let (status, _) = order_relaying_tickets(&m, &seller, &buyer, &before).await;
    assert_eq!(status, StatusCode::CREATED);

    // Redis is back before tickets writes, but the app's subscribers are not yet: a
    // ticket:created published now would be lost to orders (pub/sub keeps nothing).
    m.redis.restart();
    let id = m.sell_id(&seller, "Right after the restart", 12.0).await;
    let (status, order) = order_relaying_tickets(&m, &seller, &buyer, &id).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "orders got ticket:created: {order}"
    );
    // Relayed within the restarted Redis's first seconds, the event was held back, not
    // published to subscribers still reconnecting.
    assert!(
        m.app.logs().contains("events wait until it has been up"),
        "{}",
        m.app.logs()
    );
}
