//! The `session` cookie: an HS256 JWT with `{id, email, iat, exp}`.
//!
//! Every service verifies it the same way, through [`verify_token`] /
//! [`current_user`]. Time is passed in as Unix seconds so expiry is testable; a
//! missing, expired, tampered, wrongly signed or `alg: none` token is simply "not
//! signed in" (`None`), never an error.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "session";

/// What the session token says about the signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub id: String,
    /// Normalised email address.
    pub email: String,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Expires at (Unix seconds); the token is invalid from this second on.
    pub exp: u64,
}

/// The user a session is issued for.
#[derive(Debug, Clone, Copy)]
pub struct SessionUser<'a> {
    /// User id.
    pub id: &'a str,
    /// Normalised email address.
    pub email: &'a str,
}

/// Current Unix time in seconds.
pub fn now() -> u64 {
    // A clock before 1970 is a broken host; treating it as 0 makes every token expired.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Signs a token for `user`, valid for `ttl_seconds` from `now`.
pub fn issue_token(
    secret: &str,
    user: SessionUser<'_>,
    now: u64,
    ttl_seconds: u64,
) -> anyhow::Result<String> {
    let claims = Claims {
        id: user.id.to_owned(),
        email: user.email.to_owned(),
        iat: now,
        exp: now.saturating_add(ttl_seconds),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .context("Failed to sign the session token")
}

/// The claims of a valid, unexpired HS256 token signed with `secret`.
pub fn verify_token(secret: &str, token: &str, now: u64) -> Option<Claims> {
    // Only HS256 is accepted, so `alg: none` and other algorithms fail here.
    let mut validation = Validation::new(Algorithm::HS256);
    // Expiry is checked below against the caller's clock, without leeway.
    validation.validate_exp = false;
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp"]);
    let data = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .ok()?;
    (now < data.claims.exp).then_some(data.claims)
}

/// The `session` cookie values in a `Cookie` request header.
fn session_cookies(cookie_header: &str) -> impl Iterator<Item = &str> {
    cookie_header.split(';').filter_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name.trim() == COOKIE_NAME).then(|| value.trim().trim_matches('"'))
    })
}

/// The signed-in user according to a `Cookie` header, at time `now`.
pub fn current_user_at(cookie_header: Option<&str>, secret: &str, now: u64) -> Option<Claims> {
    // Several `session` cookies can arrive (e.g. one set for another path): any valid one counts.
    session_cookies(cookie_header?).find_map(|token| verify_token(secret, token, now))
}

/// The signed-in user according to a `Cookie` header, now.
pub fn current_user(cookie_header: Option<&str>, secret: &str) -> Option<Claims> {
    current_user_at(cookie_header, secret, now())
}

/// How the session cookie is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookiePolicy {
    /// Lifetime of the cookie and of the token, in seconds.
    pub ttl_seconds: u64,
    /// Add `Secure` (deployments behind HTTPS).
    pub secure: bool,
}

impl CookiePolicy {
    /// `Set-Cookie` value that stores `token`.
    pub fn set_cookie(&self, token: &str) -> String {
        self.cookie(token, self.ttl_seconds)
    }

    /// `Set-Cookie` value that removes the session cookie.
    pub fn clear_cookie(&self) -> String {
        self.cookie("", 0)
    }

    fn cookie(&self, value: &str, max_age: u64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{COOKIE_NAME}={value}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age}{secure}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::encode;

    const SECRET: &str = "test-secret";
    const NOW: u64 = 1_800_000_000;
    const TTL: u64 = 14_400;

    fn user() -> SessionUser<'static> {
        SessionUser {
            id: "user-1",
            email: "a@example.com",
        }
    }

    fn token() -> String {
        issue_token(SECRET, user(), NOW, TTL).unwrap()
    }

    fn b64(data: &[u8]) -> String {
        // Minimal base64url (no padding) so tests can forge tokens by hand.
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
                << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    #[test]
    fn round_trip() {
        let claims = verify_token(SECRET, &token(), NOW).unwrap();
        assert_eq!(
            claims,
            Claims {
                id: "user-1".into(),
                email: "a@example.com".into(),
                iat: NOW,
                exp: NOW + TTL
            }
        );
    }

    #[test]
    fn expired_tokens_are_rejected_without_leeway() {
        let token = token();
        assert!(verify_token(SECRET, &token, NOW + TTL - 1).is_some());
        assert!(verify_token(SECRET, &token, NOW + TTL).is_none());
        assert!(verify_token(SECRET, &token, NOW + TTL + 1).is_none());
    }

    #[test]
    fn wrong_secret_and_tampering_are_rejected() {
        let token = token();
        assert!(verify_token("other-secret", &token, NOW).is_none());

        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = b64(br#"{"id":"admin","email":"a@example.com","iat":1,"exp":99999999999}"#);
        assert!(verify_token(SECRET, &parts.join("."), NOW).is_none());

        for garbage in ["", "garbage", "a.b.c", "...", &token[..token.len() - 2]] {
            assert!(verify_token(SECRET, garbage, NOW).is_none(), "{garbage}");
        }
    }

    #[test]
    fn alg_none_is_rejected() {
        let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
        let claims = b64(br#"{"id":"u","email":"a@example.com","iat":1,"exp":99999999999}"#);
        for token in [format!("{header}.{claims}."), format!("{header}.{claims}")] {
            assert!(verify_token(SECRET, &token, NOW).is_none(), "{token}");
        }
    }

    #[test]
    fn other_algorithms_are_rejected_even_with_the_right_secret() {
        let claims = Claims {
            id: "u".into(),
            email: "a@example.com".into(),
            iat: NOW,
            exp: NOW + TTL,
        };
        let token = encode(
            &Header::new(Algorithm::HS512),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert!(verify_token(SECRET, &token, NOW).is_none());
    }

    #[test]
    fn tokens_without_exp_are_rejected() {
        #[derive(Serialize)]
        struct NoExp {
            id: &'static str,
            email: &'static str,
            iat: u64,
        }
        let token = encode(
            &Header::new(Algorithm::HS256),
            &NoExp {
                id: "u",
                email: "a@example.com",
                iat: NOW,
            },
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert!(verify_token(SECRET, &token, NOW).is_none());
    }

    #[test]
    fn current_user_reads_the_session_cookie() {
        let token = token();
        let header = format!("theme=dark; session={token}; other=1");
        let claims = current_user_at(Some(&header), SECRET, NOW).unwrap();
        assert_eq!(claims.id, "user-1");

        assert!(current_user_at(None, SECRET, NOW).is_none());
        assert!(current_user_at(Some(""), SECRET, NOW).is_none());
        assert!(current_user_at(Some("session="), SECRET, NOW).is_none());
        assert!(current_user_at(Some("session=garbage"), SECRET, NOW).is_none());
        assert!(current_user_at(Some("xsession=abc; =; ;;"), SECRET, NOW).is_none());
        let stale_first = format!("session=garbage; session={token}");
        assert!(current_user_at(Some(&stale_first), SECRET, NOW).is_some());
    }

    #[test]
    fn cookies_carry_the_required_attributes() {
        let policy = CookiePolicy {
            ttl_seconds: TTL,
            secure: false,
        };
        assert_eq!(
            policy.set_cookie("abc"),
            "session=abc; HttpOnly; SameSite=Lax; Path=/; Max-Age=14400"
        );
        assert_eq!(
            policy.clear_cookie(),
            "session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"
        );
        let secure = CookiePolicy {
            secure: true,
            ..policy
        };
        assert!(
            secure
                .set_cookie("abc")
                .ends_with("; Max-Age=14400; Secure")
        );
        assert!(secure.clear_cookie().ends_with("; Max-Age=0; Secure"));
    }

    #[test]
    fn now_is_after_2024() {
        assert!(now() > 1_700_000_000);
    }
}
