//! GET /api/users/currentuser → 200 `{"currentUser": {id, email, iat, exp} | null}`.

use common::http::cookie_header;
use common::json::json_response;
use common::session::current_user_at;
use spin_sdk::http::{Request, Response};

/// Never 401: a missing or bad cookie just means `null`.
pub fn handle(req: &Request, jwt_secret: &str, now: u64) -> Response {
    let claims = current_user_at(cookie_header(req), jwt_secret, now);
    json_response(200, &serde_json::json!({ "currentUser": claims }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::testing::{NOW, SECRET, TTL};
    use common::session::{SessionUser, issue_token};
    use serde_json::{Value, json};

    fn current_user(cookie: Option<&str>, now: u64) -> Value {
        let mut req = Request::get("/api/users/currentuser");
        if let Some(cookie) = cookie {
            req.header("cookie", cookie);
        }
        let response = handle(&req.build(), SECRET, now);
        assert_eq!(*response.status(), 200);
        serde_json::from_slice(response.body()).unwrap()
    }

    #[test]
    fn returns_the_claims_of_a_valid_session() {
        let user = SessionUser {
            id: "u1",
            email: "a@b.co",
        };
        let token = issue_token(SECRET, user, NOW, TTL).unwrap();
        let cookie = format!("session={token}");
        assert_eq!(
            current_user(Some(&cookie), NOW + 1),
            json!({"currentUser": {"id": "u1", "email": "a@b.co", "iat": NOW, "exp": NOW + TTL}})
        );
        assert_eq!(
            current_user(Some(&cookie), NOW + TTL),
            json!({"currentUser": null})
        );
    }

    #[test]
    fn is_null_without_a_valid_session() {
        for cookie in [
            None,
            Some(""),
            Some("session="),
            Some("session=garbage"),
            Some("x=1"),
        ] {
            assert_eq!(
                current_user(cookie, NOW),
                json!({"currentUser": null}),
                "{cookie:?}"
            );
        }
    }
}
