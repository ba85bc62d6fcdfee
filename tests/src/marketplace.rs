//! The marketplace app as a user sees it: the repo's spin.toml served by `tessera up`
//! against a private Redis, with typed helpers for the HTTP API.

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

use crate::harness::{RedisServer, TesseraUp, workspace_root};

/// The secret tests sign session cookies with (to forge and tamper with tokens).
pub const JWT_SECRET: &str = "test-secret-for-black-box-tests";

/// A running marketplace with its own Redis and state directory.
pub struct Marketplace {
    pub app: TesseraUp,
    pub redis: RedisServer,
}

impl Marketplace {
    pub fn start() -> Marketplace {
        Self::start_with(&[])
    }

    /// Starts the app with extra `SPIN_VARIABLE_*`-style environment.
    pub fn start_with(env: &[(&str, &str)]) -> Marketplace {
        let redis = RedisServer::start();
        let root = workspace_root();
        let rc = root.join("runtime-config.toml").display().to_string();
        let address = redis.address();
        let mut vars: Vec<(&str, &str)> = vec![
            ("SPIN_VARIABLE_JWT_SECRET", JWT_SECRET),
            ("SPIN_VARIABLE_REDIS_ADDRESS", &address),
            // Cheap hashing keeps the suite fast; the production cost is the default.
            ("SPIN_VARIABLE_ARGON2_MEMORY_KIB", "64"),
            ("SPIN_VARIABLE_ARGON2_ITERATIONS", "1"),
        ];
        vars.extend_from_slice(env);
        let app = TesseraUp::spawn(
            &root.join("spin.toml"),
            &["--runtime-config-file", &rc],
            &vars,
        );
        Marketplace { app, redis }
    }

    pub fn url(&self, path: &str) -> String {
        self.app.url(path)
    }

    /// A browser-like client: it keeps the session cookie between requests.
    pub fn client(&self) -> Client {
        Client::builder()
            .cookie_store(true)
            .build()
            .expect("http client")
    }

    pub async fn post(&self, client: &Client, path: &str, body: Value) -> Response {
        client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn get(&self, client: &Client, path: &str) -> Response {
        client.get(self.url(path)).send().await.expect("GET")
    }

    /// Signs up a new user on `client`, asserting success; returns the user's id.
    pub async fn sign_up(&self, client: &Client, email: &str) -> String {
        let resp = self
            .post(
                client,
                "/api/users/signup",
                json!({"email": email, "password": "password"}),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED, "signup {email}");
        body(resp).await["id"].as_str().expect("user id").to_owned()
    }
}

/// The JSON body of a response.
pub async fn body(resp: Response) -> Value {
    let text = resp.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The messages of an error body, in order.
pub fn messages(error_body: &Value) -> Vec<String> {
    error_body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["message"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
