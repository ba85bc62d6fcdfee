//! The production shape (deploy/k8s's prod overlay: one process per SpinApp replica,
//! nginx as the ingress, one Redis): README's purchase journey through the ingress,
//! requests spread over a service's replicas, and a killed replica that nginx routes
//! around and that serves again once restarted.

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tessera_blackbox::marketplace::{body, eventually};
use tessera_blackbox::topology::Topology;
use tessera_blackbox::{RedisServer, wait_until};

/// Event propagation takes milliseconds; this is the most any step may take.
const DEADLINE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn the_journey_through_the_ingress_spreads_over_replicas_and_survives_a_killed_one() {
    let mut topology = Topology::start().expect("the topology starts");
    for service in topology.services() {
        assert!(service.replicas >= 2, "{service:?}");
    }
    let ingress = Ingress {
        base_url: topology.base_url(),
    };

    // README's journey: sign up, sell a ticket, see it listed, another user orders it
    // and pays with a card; the order completes.
    let seller = ingress.client();
    ingress.sign_up(&seller, "seller@example.com").await;
    let (status, ticket) = ingress
        .send(
            &seller,
            "POST",
            "/api/tickets",
            json!({"title": "Concert", "price": 10.99}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    let ticket_id = ticket["id"].as_str().expect("ticket id").to_owned();
    for _ in 0..6 {
        let (status, list) = ingress
            .send(&seller, "GET", "/api/tickets", Value::Null)
            .await;
        assert_eq!(status, StatusCode::OK);
        let listed = list
            .as_array()
            .expect("a list")
            .iter()
            .any(|t| t["id"] == ticket_id.as_str());
        assert!(listed, "the new ticket is listed: {list}");
    }

    let buyer = ingress.client();
    ingress.sign_up(&buyer, "buyer@example.com").await;
    let order_id = eventually(
        "the ticket to reach the orders service",
        DEADLINE,
        || async {
            let (status, order) = ingress
                .send(
                    &buyer,
                    "POST",
                    "/api/orders",
                    json!({"ticketId": ticket_id}),
                )
                .await;
            match status {
                StatusCode::NOT_FOUND => None,
                StatusCode::CREATED => order["id"].as_str().map(str::to_owned),
                other => panic!("ordering: {other} {order}"),
            }
        },
    )
    .await;
    let (status, payment) = ingress
        .send(
            &buyer,
            "POST",
            "/api/payments",
            json!({"orderId": order_id, "token": "pm_card_visa"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");
    let order_path = format!("/api/orders/{order_id}");
    eventually("the order to complete", DEADLINE, || async {
        let (status, order) = ingress.send(&buyer, "GET", &order_path, Value::Null).await;
        (status == StatusCode::OK && order["status"] == "complete").then_some(())
    })
    .await;

    // nginx spread the requests: more than one replica of tickets served the list.
    let served = |t: &Topology, service: &str, index: usize, path: &str| {
        t.count_log_lines(
            service,
            index,
            &["tessera::request", &format!("path={path}")],
        )
        .expect("a replica")
    };
    let replicas_serving = |t: &Topology, service: &str, path: &str| {
        let count = t
            .services()
            .iter()
            .find(|s| s.name == service)
            .expect("service")
            .replicas;
        (0..count)
            .filter(|&i| served(t, service, i, path) > 0)
            .count()
    };
    assert!(
        wait_until(DEADLINE, || replicas_serving(
            &topology,
            "tickets",
            "/api/tickets"
        ) > 1),
        "the ticket list was served by one tickets replica only"
    );

    // A crashed orders replica: nginx sends its requests to the others.
    topology.kill_replica("orders", 0).expect("kill orders#0");
    let dead = topology
        .replicas()
        .into_iter()
        .find(|r| r.service == "orders" && r.index == 0)
        .expect("orders#0 is listed");
    assert!(!dead.alive && dead.pid.is_none(), "{dead:?}");
    for _ in 0..6 {
        let (status, order) = ingress.send(&buyer, "GET", &order_path, Value::Null).await;
        assert_eq!(status, StatusCode::OK, "with orders#0 down: {order}");
        assert_eq!(order["status"], "complete");
    }

    // Restarted on its port, it serves again through the ingress.
    let before = served(&topology, "orders", 0, &order_path);
    topology
        .restart_replica("orders", 0)
        .expect("restart orders#0");
    eventually(
        "the restarted orders#0 to serve through the ingress",
        DEADLINE,
        || async {
            let (status, order) = ingress.send(&buyer, "GET", &order_path, Value::Null).await;
            assert_eq!(status, StatusCode::OK, "{order}");
            (served(&topology, "orders", 0, &order_path) > before).then_some(())
        },
    )
    .await;
    assert!(
        topology.replicas().iter().all(|r| r.alive),
        "{:?}",
        topology.replicas()
    );
}

/// The app as a browser sees it through the ingress.
struct Ingress {
    base_url: String,
}

impl Ingress {
    /// A client that keeps its session cookie.
    fn client(&self) -> Client {
        Client::builder()
            .cookie_store(true)
            .build()
            .expect("http client")
    }

    /// `method path` with `json` as the body (none when null): the status and JSON body.
    async fn send(
        &self,
        client: &Client,
        method: &str,
        path: &str,
        json: Value,
    ) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request = client.request(method, format!("{}{path}", self.base_url));
        if !json.is_null() {
            request = request.json(&json);
        }
        let resp = request.send().await.expect("the ingress answers");
        let status = resp.status();
        (status, body(resp).await)
    }

    async fn sign_up(&self, client: &Client, email: &str) {
        let (status, user) = self
            .send(
                client,
                "POST",
                "/api/users/signup",
                json!({"email": email, "password": "password"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "signing up {email}: {user}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_comes_back_with_its_data_and_the_replicas_resubscribe() {
    let mut topology = Topology::start().expect("the topology starts");
    let ingress = Ingress {
        base_url: topology.base_url(),
    };
    let redis = RedisServer::existing(port_of(&topology.redis_address()));
    let mut connection = redis::Client::open(topology.redis_address())
        .and_then(|client| client.get_connection())
        .expect("connect to Redis");
    let _: () = redis::cmd("SET")
        .arg("topology:kept")
        .arg("yes")
        .query(&mut connection)
        .expect("SET");
    let subscribed_before = topology
        .count_log_lines("orders", 1, &["Subscribed to ", "/ticket:created"])
        .expect("orders#1");

    topology.redis_stop();
    topology.redis_start().expect("Redis starts again");
    assert!(
        redis.exists("topology:kept"),
        "the append-only file kept the key"
    );
    // Every orders replica subscribes again, so a new ticket reaches orders.
    assert!(
        wait_until(DEADLINE, || {
            topology
                .count_log_lines("orders", 1, &["Subscribed to ", "/ticket:created"])
                .expect("orders#1")
                > subscribed_before
        }),
        "orders#1 did not subscribe again"
    );
    let seller = ingress.client();
    ingress.sign_up(&seller, "seller@example.com").await;
    let (status, ticket) = ingress
        .send(
            &seller,
            "POST",
            "/api/tickets",
            json!({"title": "After", "price": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    let buyer = ingress.client();
    ingress.sign_up(&buyer, "buyer@example.com").await;
    eventually(
        "the ticket to reach orders after the restart",
        DEADLINE,
        || async {
            let (status, _) = ingress
                .send(
                    &buyer,
                    "POST",
                    "/api/orders",
                    json!({"ticketId": ticket["id"]}),
                )
                .await;
            (status == StatusCode::CREATED).then_some(())
        },
    )
    .await;
}

/// The port of `redis://127.0.0.1:PORT`.
fn port_of(address: &str) -> u16 {
    address
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .expect("an address with a port")
}
