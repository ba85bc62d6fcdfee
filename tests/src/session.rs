//! Session cookies built by hand (HS256 JWTs), so tests can forge, expire and tamper
//! with them and check that every service treats them alike.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

use crate::marketplace::JWT_SECRET;

/// The id of [`valid_token`]'s user.
pub const USER_ID: &str = "u1";

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A JWT of `claims` under `header`, signed with HMAC-SHA256 by `secret`.
pub fn token(header: &Value, claims: &Value, secret: &str) -> String {
    let head = URL_SAFE_NO_PAD.encode(header.to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{head}.{payload}").as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{head}.{payload}.{sig}")
}

fn hs256() -> Value {
    json!({"alg": "HS256", "typ": "JWT"})
}

fn claims() -> Value {
    json!({"id": USER_ID, "email": "eve@example.com", "iat": now(), "exp": now() + 3600})
}

/// A well-signed session of [`USER_ID`], valid for an hour: the control.
pub fn valid_token() -> String {
    token(&hs256(), &claims(), JWT_SECRET)
}

/// A token with these claims, well signed.
pub fn signed(claims: &Value) -> String {
    token(&hs256(), claims, JWT_SECRET)
}

/// Tokens that must all mean "not signed in", by name: expired, signed with another
/// secret, payload swapped under the original signature, `alg: none`, and garbage.
pub fn bad_tokens() -> Vec<(&'static str, String)> {
    let mut parts: Vec<String> = valid_token().split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(
        json!({"id": "admin", "email": "eve@example.com", "iat": now(), "exp": now() + 3600})
            .to_string(),
    );
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    vec![
        (
            "expired",
            signed(
                &json!({"id": USER_ID, "email": "e@x.io", "iat": now() - 7200, "exp": now() - 60}),
            ),
        ),
        ("forged", token(&hs256(), &claims(), "some-other-secret")),
        ("tampered", parts.join(".")),
        ("alg none", unsigned),
        ("garbage", "not.a.jwt".to_owned()),
    ]
}
