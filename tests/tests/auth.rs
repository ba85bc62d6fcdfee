//! The Session section of the marketplace contract, over real HTTP.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_blackbox::marketplace::{Marketplace, assert_one_winner, body, messages};
use tessera_blackbox::session::{USER_ID, bad_tokens, valid_token};

async fn current_user_with_cookie(m: &Marketplace, cookie: &str) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .get(m.url("/api/users/currentuser"))
        .header("cookie", format!("session={cookie}"))
        .send()
        .await
        .unwrap();
    (resp.status(), body(resp).await)
}

#[tokio::test]
async fn signup_sets_a_session_cookie_and_currentuser_reads_it() {
    let m = Marketplace::start();
    let client = m.client();
    let resp = m
        .post(
            &client,
            "/api/users/signup",
            json!({"email": "  Alice@Example.COM ", "password": " secret "}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["session=", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "not Secure by default: {cookie}"
    );
    let user = body(resp).await;
    assert_eq!(
        user["email"], "alice@example.com",
        "email is trimmed and lower-cased"
    );

    let me = body(m.get(&client, "/api/users/currentuser").await).await;
    let current = &me["currentUser"];
    assert_eq!(current["id"], user["id"]);
    assert_eq!(current["email"], "alice@example.com");
    let (iat, exp) = (
        current["iat"].as_u64().unwrap(),
        current["exp"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, 14400, "a few hours' lifetime");

    let anonymous = body(
        m.get(&reqwest::Client::new(), "/api/users/currentuser")
            .await,
    )
    .await;
    assert_eq!(anonymous, json!({"currentUser": null}));
}

#[tokio::test]
async fn signup_validation_reports_every_failed_rule() {
    let m = Marketplace::start();
    let client = m.client();
    let resp = m
        .post(
            &client,
            "/api/users/signup",
            json!({"email": "not-an-email", "password": "  abc  "}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let errors = body(resp).await;
    assert_eq!(
        errors,
        json!({"errors": [
            {"message": "Email must be valid", "field": "email"},
            {"message": "Password must be between 4 and 20 characters", "field": "password"}
        ]})
    );
    let resp = m
        .post(
            &client,
            "/api/users/signup",
            json!({"email": "a@b.co", "password": "x".repeat(21)}),
        )
        .await;
    assert_eq!(
        messages(&body(resp).await),
        ["Password must be between 4 and 20 characters"]
    );
    let resp = m
        .post(
            &client,
            "/api/users/signup",
            json!({"email": 42, "password": "password"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body(resp).await["errors"][0]["field"], "email");
    // Nothing was created by any of these.
    let resp = m
        .post(
            &client,
            "/api/users/signin",
            json!({"email": "a@b.co", "password": "x".repeat(21)}),
        )
        .await;
    assert_eq!(messages(&body(resp).await), ["Invalid credentials"]);
}

#[tokio::test]
async fn emails_are_unique_even_under_concurrent_signups() {
    let m = Marketplace::start();
    m.sign_up(&m.client(), "taken@example.com").await;
    let resp = m
        .post(
            &m.client(),
            "/api/users/signup",
            json!({"email": "TAKEN@example.com", "password": "password"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(messages(&body(resp).await), ["Email in use"]);

    let attempts = (0..20).map(|_| {
        let client = m.client();
        let url = m.url("/api/users/signup");
        async move {
            let resp = client
                .post(url)
                .json(&json!({"email": "race@example.com", "password": "password"}))
                .send()
                .await
                .unwrap();
            let status = resp.status();
            (status, body(resp).await)
        }
    });
    let results = futures::future::join_all(attempts).await;
    assert_one_winner(&results, "Email in use");
}

#[tokio::test]
async fn signin_and_signout() {
    let m = Marketplace::start();
    let id = m.sign_up(&m.client(), "bob@example.com").await;

    let client = m.client();
    let resp = m
        .post(
            &client,
            "/api/users/signin",
            json!({"email": "BOB@example.com", "password": "password"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("session=")
    );
    assert_eq!(
        body(resp).await,
        json!({"id": id, "email": "bob@example.com"})
    );
    assert_eq!(
        body(m.get(&client, "/api/users/currentuser").await).await["currentUser"]["id"],
        id
    );

    let wrong_password = m
        .post(
            &m.client(),
            "/api/users/signin",
            json!({"email": "bob@example.com", "password": "wrong!"}),
        )
        .await;
    let unknown_email = m
        .post(
            &m.client(),
            "/api/users/signin",
            json!({"email": "nobody@example.com", "password": "password"}),
        )
        .await;
    assert_eq!(wrong_password.status(), StatusCode::BAD_REQUEST);
    assert_eq!(unknown_email.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        body(wrong_password).await,
        body(unknown_email).await,
        "no hint which part was wrong"
    );

    let resp = m.post(&client, "/api/users/signout", json!({})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(body(resp).await, json!({}));
    assert_eq!(
        body(m.get(&client, "/api/users/currentuser").await).await,
        json!({"currentUser": null})
    );
}

#[tokio::test]
async fn forged_expired_tampered_and_unsigned_tokens_mean_signed_out() {
    let m = Marketplace::start();
    let valid = valid_token();
    let (status, me) = current_user_with_cookie(&m, &valid).await;
    assert_eq!(
        (status, me["currentUser"]["id"].clone()),
        (StatusCode::OK, json!(USER_ID)),
        "control: a well-signed token is accepted"
    );

    for (name, bad) in bad_tokens() {
        let (status, me) = current_user_with_cookie(&m, &bad).await;
        assert_eq!(status, StatusCode::OK, "{name}: never 401");
        assert_eq!(me, json!({"currentUser": null}), "{name}");
    }
}

#[tokio::test]
async fn bad_requests_get_clear_4xx_errors() {
    let m = Marketplace::start();
    let client = reqwest::Client::new();
    let signup = m.url("/api/users/signup");
    let send = |body: Vec<u8>| {
        let client = client.clone();
        let url = signup.clone();
        async move {
            let resp = client
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = resp.status();
            (status, resp.text().await.unwrap())
        }
    };
    let (status, text) = send(b"{\"email\": ".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("Request body must be valid JSON"), "{text}");
    assert_eq!(send(Vec::new()).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(send(b"[1,2]".to_vec()).await.0, StatusCode::BAD_REQUEST);
    let huge = format!(
        "{{\"email\": \"a@b.co\", \"password\": \"{}\"}}",
        "x".repeat(200_000)
    );
    assert_eq!(
        send(huge.into_bytes()).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    m.assert_json_404s(
        &client,
        &[
            (reqwest::Method::GET, "/api/users/signup"),
            (reqwest::Method::POST, "/api/users/nope"),
            (reqwest::Method::DELETE, "/api/users/currentuser"),
        ],
    )
    .await;
    assert!(
        !m.app.logs().contains("status=5"),
        "no 5xx for bad input:\n{}",
        m.app.logs()
    );
}
