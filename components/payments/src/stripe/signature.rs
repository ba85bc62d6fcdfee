//! The `Stripe-Signature` header of webhooks.
//!
//! `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">[,v1=…][,v0=…]`, keyed by
//! the endpoint's signing secret (variable `stripe_webhook_secret`). Any `v1` may
//! match (Stripe sends one per active secret while a secret is being rolled); other
//! schemes are ignored. A timestamp further than [`TOLERANCE_SECONDS`] from now is
//! refused, so a captured delivery cannot be replayed later.
//!
//! Hand-written rather than `async-stripe-webhook`'s: in 1.0.0-rc.10 its check runs
//! only inside `Webhook::construct_event`, which then parses the whole event strictly
//! into `stripe_shared::Event` (every field of the API version it was generated from)
//! and fails the delivery when that parse fails: localstripe's deliveries (see
//! `routes/webhook/localstripe_succeeded.json`) have no `pending_webhooks`, which that
//! type requires, nor most PaymentIntent fields, and events of other API versions differ
//! too. Payments reads only the few fields it needs, leniently; the check itself is one
//! HMAC, signed the way the crate's own test helper signs.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far the signed timestamp may be from now (Stripe's libraries use 5 minutes).
pub const TOLERANCE_SECONDS: u64 = 300;

type HmacSha256 = Hmac<Sha256>;

/// Why a webhook's signature is refused; the messages are the 400's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// No header.
    Missing,
    /// No timestamp or no `v1` signature, or not parsable.
    Malformed,
    /// No `v1` signature matches the body.
    Mismatch,
    /// Signed too long ago (or too far in the future).
    OutsideTolerance,
}

impl SignatureError {
    /// The message of the 400 answer.
    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => "Missing Stripe-Signature header",
            Self::Malformed => "Malformed Stripe-Signature header",
            Self::Mismatch => "Stripe-Signature does not match the payload",
            Self::OutsideTolerance => "Stripe-Signature timestamp is outside the tolerance",
        }
    }
}

/// Checks `header` against the raw `body` with `secret`, at `now` (Unix seconds).
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secret: &str,
    now: u64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" => {
                timestamp = Some(
                    value
                        .parse::<u64>()
                        .map_err(|_| SignatureError::Malformed)?,
                )
            }
            "v1" => signatures.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let matches = signatures.iter().any(|signature| {
        decode_hex(signature).is_some_and(|bytes| {
            // `verify_slice` compares in constant time.
            mac(secret, timestamp, body).verify_slice(&bytes).is_ok()
        })
    });
    if !matches {
        return Err(SignatureError::Mismatch);
    }
    if now.abs_diff(timestamp) > TOLERANCE_SECONDS {
        return Err(SignatureError::OutsideTolerance);
    }
    Ok(())
}

/// The header Stripe would send for `body` signed at `timestamp` (for tests and tools).
pub fn header(body: &[u8], secret: &str, timestamp: u64) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

fn mac(secret: &str, timestamp: u64, body: &[u8]) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Lower- or upper-case hex; `None` for anything else.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digits = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(digits, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test";
    const BODY: &[u8] = br#"{"type":"payment_intent.succeeded"}"#;
    const NOW: u64 = 1_800_000_000;

    #[test]
    fn a_fresh_signature_of_the_body_is_accepted() {
        let header = header(BODY, SECRET, NOW - 10);
        assert_eq!(verify(Some(&header), BODY, SECRET, NOW), Ok(()));
    }

    #[test]
    fn matches_pythons_hmac() {
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"whsec_test",
        //   b"1800000000.{\"type\":\"payment_intent.succeeded\"}", hashlib.sha256).hexdigest())'
        assert_eq!(
            header(BODY, SECRET, NOW),
            "t=1800000000,v1=901d285da126fb41a8f684c42daa44c65508dda5a20f76772ef932bd54996424"
        );
    }

    #[test]
    fn any_v1_may_match_and_other_schemes_are_ignored() {
        let good = header(BODY, SECRET, NOW);
        let v1 = good.split_once(",v1=").unwrap().1;
        let header = format!(
            "t={NOW},v0=abc,v1={},v1={}",
            "00".repeat(32),
            v1.to_uppercase()
        );
        assert_eq!(verify(Some(&header), BODY, SECRET, NOW), Ok(()));
    }

    #[test]
    fn missing_and_malformed_headers() {
        assert_eq!(
            verify(None, BODY, SECRET, NOW),
            Err(SignatureError::Missing)
        );
        for header in [
            "",
            "garbage",
            "v1=abcd",
            "t=,v1=abcd",
            "t=soon,v1=abcd",
            "t=-5,v1=abcd",
            &format!("t={NOW}"),
            &format!("t={NOW},v0=abcd"),
        ] {
            assert_eq!(
                verify(Some(header), BODY, SECRET, NOW),
                Err(SignatureError::Malformed),
                "{header:?}"
            );
        }
    }

    #[test]
    fn a_wrong_secret_body_or_digest_does_not_match() {
        let header = header(BODY, SECRET, NOW);
        assert_eq!(
            verify(Some(&header), BODY, "whsec_other", NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                Some(&header),
                br#"{"type":"payment_intent.succeeded" }"#,
                SECRET,
                NOW
            ),
            Err(SignatureError::Mismatch)
        );
        for digest in ["zz", "abc", "", &"00".repeat(32)] {
            let forged = format!("t={NOW},v1={digest}");
            assert_eq!(
                verify(Some(&forged), BODY, SECRET, NOW),
                Err(SignatureError::Mismatch),
                "{digest:?}"
            );
        }
        // The timestamp is signed: moving it breaks the signature.
        let moved = header.replace(&format!("t={NOW}"), &format!("t={}", NOW + 1));
        assert_eq!(
            verify(Some(&moved), BODY, SECRET, NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn old_and_future_timestamps_are_refused() {
        let edge = header(BODY, SECRET, NOW - TOLERANCE_SECONDS);
        assert_eq!(verify(Some(&edge), BODY, SECRET, NOW), Ok(()));
        for timestamp in [NOW - TOLERANCE_SECONDS - 1, NOW + TOLERANCE_SECONDS + 1, 0] {
            let header = header(BODY, SECRET, timestamp);
            assert_eq!(
                verify(Some(&header), BODY, SECRET, NOW),
                Err(SignatureError::OutsideTolerance),
                "{timestamp}"
            );
        }
    }
}
