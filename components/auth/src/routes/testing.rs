//! Test doubles and helpers for the route tests.

use std::cell::{Cell, RefCell};

use anyhow::anyhow;
use common::config::SessionConfig;
use common::session::{Claims, CookiePolicy, verify_token};
use common::testing::assert_json_error;
pub use common::testing::body_json;
use serde_json::Value;
use spin_sdk::http::{Request, Response};

use super::Deps;
use crate::domain::{Email, Password};
use crate::password::{Hasher, TEST_COST};
use crate::store::{InsertError, User, UserStore};

pub const SECRET: &str = "route-test-secret";
pub const NOW: u64 = 1_800_000_000;
pub const TTL: u64 = 3_600;

/// In-memory [`UserStore`] with the same uniqueness rule as the sqlite table.
#[derive(Default)]
pub struct MemoryStore {
    users: RefCell<Vec<(User, u64)>>,
    taken_on_next_insert: Cell<bool>,
    broken: Cell<bool>,
}

impl MemoryStore {
    pub fn user(&self, email: &str) -> Option<User> {
        let users = self.users.borrow();
        users
            .iter()
            .find(|(u, _)| u.email == email)
            .map(|(u, _)| u.clone())
    }

    pub fn created_at(&self, id: &str) -> Option<u64> {
        let users = self.users.borrow();
        users.iter().find(|(u, _)| u.id == id).map(|(_, at)| *at)
    }

    /// Simulates another request inserting the same email between check and insert.
    pub fn fail_next_insert_as_taken(&self) {
        self.taken_on_next_insert.set(true);
    }

    pub fn break_it(&self) {
        self.broken.set(true);
    }

    pub fn put(&self, email: &str, password_hash: &str) {
        let user = User {
            id: format!("id-{email}"),
            email: email.to_owned(),
            password_hash: password_hash.to_owned(),
        };
        self.users.borrow_mut().push((user, NOW));
    }
}

impl UserStore for MemoryStore {
    fn find_by_email(&self, email: &Email) -> anyhow::Result<Option<User>> {
        if self.broken.get() {
            return Err(anyhow!("disk on fire"));
        }
        Ok(self.user(email.as_ref()))
    }

    fn insert(&self, user: &User, created_at: u64) -> Result<(), InsertError> {
        if self.taken_on_next_insert.replace(false) || self.user(&user.email).is_some() {
            return Err(InsertError::EmailTaken);
        }
        self.users.borrow_mut().push((user.clone(), created_at));
        Ok(())
    }
}

pub fn deps() -> Deps<MemoryStore> {
    Deps {
        store: MemoryStore::default(),
        hasher: Hasher::new(TEST_COST).unwrap(),
        session: SessionConfig {
            jwt_secret: SECRET.to_owned(),
            cookie: CookiePolicy {
                ttl_seconds: TTL,
                secure: false,
            },
        },
        now: NOW,
    }
}

pub fn password(raw: &str) -> Password {
    Password::parse_new(Some(raw)).unwrap()
}

pub fn post(body: Value) -> Request {
    post_raw(&serde_json::to_vec(&body).unwrap())
}

pub fn post_raw(body: &[u8]) -> Request {
    Request::post("/api/users/x", body.to_vec())
        .header("content-type", "application/json")
        .build()
}

/// The claims of the session cookie the response sets, checking its attributes.
pub fn session_claims(response: &Response) -> Option<Claims> {
    let cookie = response.header("set-cookie")?.as_str()?;
    let (token, attributes) = cookie.strip_prefix("session=")?.split_once("; ")?;
    assert_eq!(
        attributes,
        format!("HttpOnly; SameSite=Lax; Path=/; Max-Age={TTL}")
    );
    verify_token(SECRET, token, NOW)
}

/// Asserts an error response: status, JSON content type and `errors` array.
/// An error never sets the session cookie.
pub fn assert_error(result: Result<Response, common::ApiError>, status: u16, errors: Value) {
    let response = assert_json_error(result, status, errors);
    assert!(response.header("set-cookie").is_none());
}
