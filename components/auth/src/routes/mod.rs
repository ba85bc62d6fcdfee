//! One module per endpoint. Handlers take their dependencies as arguments, so the
//! whole request → domain → store → response path is tested natively.

pub mod current_user;
pub mod signin;
pub mod signout;
pub mod signup;

#[cfg(test)]
mod testing;

use common::session::{SessionUser, issue_token};
use common::{ApiError, FieldError, config::SessionConfig, http::with_cookie, json};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use spin_sdk::http::Response;

use crate::password::Hasher;

/// What signup and signin need besides the request.
pub struct Deps<S> {
    /// Where users live.
    pub store: S,
    /// argon2id with the configured cost.
    pub hasher: Hasher,
    /// Secret and cookie policy.
    pub session: SessionConfig,
    /// Current Unix time in seconds.
    pub now: u64,
}

/// The signup/signin body. Values stay raw so that a missing field or one of the
/// wrong type is reported as that field's validation error, not as a bad body.
#[derive(Deserialize)]
struct Credentials {
    #[serde(default)]
    email: Option<Value>,
    #[serde(default)]
    password: Option<Value>,
}

impl Credentials {
    fn parse(body: &[u8]) -> Result<Self, ApiError> {
        json::parse_body(body)
    }

    fn email(&self) -> Option<&str> {
        self.email.as_ref()?.as_str()
    }

    fn password(&self) -> Option<&str> {
        self.password.as_ref()?.as_str()
    }
}

/// Both fields are checked before failing, so every failed rule is reported at once.
fn validated<A, B>(a: Result<A, FieldError>, b: Result<B, FieldError>) -> Result<(A, B), ApiError> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (a, b) => Err(ApiError::Validation(
            [a.err(), b.err()].into_iter().flatten().collect(),
        )),
    }
}

#[derive(Serialize)]
struct UserBody<'a> {
    id: &'a str,
    email: &'a str,
}

/// `{id, email}` with `status` and a fresh session cookie.
fn signed_in(
    status: u16,
    user: SessionUser<'_>,
    session: &SessionConfig,
    now: u64,
) -> Result<Response, ApiError> {
    let token = issue_token(&session.jwt_secret, user, now, session.cookie.ttl_seconds)?;
    let body = UserBody {
        id: user.id,
        email: user.email,
    };
    Ok(with_cookie(
        json::json_response(status, &body),
        session.cookie.set_cookie(&token),
    ))
}
