//! Bad input never causes a 5xx and changes nothing: malformed JSON, wrong types, huge
//! bodies, unknown and malformed ids, forged cookies — against every service.

use reqwest::{Client, Method, StatusCode};
use serde_json::json;
use tessera_blackbox::marketplace::{Marketplace, body};

#[tokio::test]
async fn every_service_answers_bad_input_with_a_clear_4xx() {
    let m = Marketplace::start();
    let user = m.client();
    m.sign_up(&user, "user@example.com").await;
    let ticket = m.sell(&user, "Real", 10.0).await;
    let ticket_id = ticket["id"].as_str().unwrap().to_owned();
    let huge = format!("{{\"title\": \"{}\", \"price\": 1}}", "x".repeat(300_000));
    let unknown = "7e0b8f4c-1111-4222-8333-944455556666";

    let cases: Vec<(Method, String, Option<String>, StatusCode)> = vec![
        (
            Method::POST,
            "/api/tickets".into(),
            Some("{not json".into()),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/tickets".into(),
            Some(r#"{"title": 5, "price": "ten"}"#.into()),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/tickets".into(),
            Some(r#"{"title": "t", "price": 10.999}"#.into()),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/tickets".into(),
            Some(r#"{"title": "t", "price": 1000000.01}"#.into()),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/tickets".into(),
            Some(r#"{"title": "   ", "price": -1}"#.into()),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/tickets".into(),
            Some(huge.clone()),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            Method::GET,
            format!("/api/tickets/{unknown}"),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            "/api/tickets/not-an-id".into(),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            "/api/tickets?limit=lots".into(),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PUT,
            format!("/api/tickets/{ticket_id}"),
            Some("[]".into()),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/orders".into(),
            Some("{}".into()),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/orders".into(),
            Some(r#"{"ticketId": 42}"#.into()),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/orders".into(),
            Some(format!(r#"{{"ticketId": "{unknown}"}}"#)),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/api/orders".into(),
            Some(huge.clone()),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            Method::GET,
            "/api/orders/..%2F..%2Fetc".into(),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::DELETE,
            format!("/api/orders/{unknown}"),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/api/payments".into(),
            Some("nope".into()),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/payments".into(),
            Some(r#"{"orderId": ["x"]}"#.into()),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/payments".into(),
            Some(huge),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            Method::POST,
            "/api/payments/webhook".into(),
            Some("{}".into()),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PATCH,
            "/api/tickets".into(),
            None,
            StatusCode::NOT_FOUND,
        ),
    ];
    for (method, path, payload, expected) in cases {
        let mut request = user
            .request(method.clone(), m.url(&path))
            .header("content-type", "application/json");
        if let Some(payload) = payload {
            request = request.body(payload);
        }
        let resp = request.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, expected, "{method} {path}: {text}");
        let parsed: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"));
        assert!(
            parsed["errors"][0]["message"].is_string(),
            "{method} {path}: {text}"
        );
    }

    // A forged session is simply "not signed in" everywhere.
    let forged = Client::new();
    for (method, path) in [
        (Method::POST, "/api/tickets"),
        (Method::GET, "/api/orders"),
        (Method::POST, "/api/payments"),
    ] {
        let resp = forged
            .request(method.clone(), m.url(path))
            .header("cookie", "session=eyJhbGciOiJub25lIn0.eyJpZCI6ImFkbWluIn0.")
            .json(&json!({"title": "x", "price": 1, "orderId": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
    }

    // Nothing changed: the one real ticket is still the only one, untouched.
    let list = body(m.get(&Client::new(), "/api/tickets").await).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["version"], 0);
    assert!(
        !m.app.logs().contains("status=5"),
        "no 5xx:\n{}",
        m.app.logs()
    );
}
