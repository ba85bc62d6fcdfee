//! POST /api/users/signout → 200 `{}` and the session cookie cleared.

use common::http::with_cookie;
use common::json::json_response;
use common::session::CookiePolicy;
use spin_sdk::http::Response;

/// Clears the cookie; JWTs are stateless, so there is nothing else to revoke.
pub fn handle(cookie: &CookiePolicy) -> Response {
    with_cookie(
        json_response(200, &serde_json::json!({})),
        cookie.clear_cookie(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clears_the_cookie() {
        let policy = CookiePolicy {
            ttl_seconds: 60,
            secure: true,
        };
        let response = handle(&policy);
        assert_eq!(*response.status(), 200);
        assert_eq!(response.body(), b"{}");
        assert_eq!(
            response.header("set-cookie").and_then(|v| v.as_str()),
            Some("session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0; Secure")
        );
    }
}
