//! Order ids: UUIDs, hyphenated and lower-case, as the orders service writes them.

use std::fmt;

/// The id of an order. Anything that is not a hyphenated UUID cannot name an order, so
/// a malformed `orderId` is answered like an unknown one (404) without a lookup. The
/// normalised form also keeps the Stripe idempotency keys derived from it stable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderId(String);

impl OrderId {
    /// The id in `raw` (case-insensitive), or `None` when it is not a hyphenated UUID.
    pub fn parse(raw: &str) -> Option<Self> {
        // `Uuid::try_parse` also takes the simple, braced and URN forms; order ids are
        // only ever written hyphenated.
        const HYPHENATED_LEN: usize = 36;
        if raw.len() != HYPHENATED_LEN {
            return None;
        }
        let uuid = uuid::Uuid::try_parse(raw).ok()?;
        Some(Self(uuid.hyphenated().to_string()))
    }
}

impl AsRef<str> for OrderId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_normalised_to_lower_case() {
        let id = OrderId::parse("A1A2A3A4-B1B2-C1C2-D1D2-D3D4D5D6D7D8").unwrap();
        assert_eq!(id.as_ref(), "a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8");
        assert_eq!(id.to_string(), id.as_ref());
    }

    #[test]
    fn malformed_ids_are_refused() {
        for raw in [
            "",
            "abc",
            "a1a2a3a4b1b2c1c2d1d2d3d4d5d6d7d8",
            "{a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8}",
            "g1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8",
            " a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8",
            "507f1f77bcf86cd799439011",
        ] {
            assert_eq!(OrderId::parse(raw), None, "{raw:?}");
        }
    }
}
