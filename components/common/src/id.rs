//! Order ids: UUIDs, hyphenated and lower-case, as the orders service writes them
//! (fresh ones are v4).

use std::fmt;

/// The id of an order. Anything that is not a hyphenated UUID cannot name an order, so
/// a malformed id (in a path, or an `orderId`) is answered like an unknown one (404)
/// without a lookup. The normalised form also keeps keys derived from it (Stripe
/// idempotency keys) stable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderId(String);

impl OrderId {
    /// A fresh random id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// The id in `raw` (case-insensitive), or `None` when it is not a hyphenated UUID.
    pub fn parse(raw: &str) -> Option<Self> {
        // `Uuid::try_parse` also takes the simple, braced and URN forms; ids are only
        // ever written hyphenated, so the others are refused rather than normalised.
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
    fn generated_ids_parse_back() {
        let id = OrderId::generate();
        assert_eq!(OrderId::parse(id.as_ref()), Some(id.clone()));
        let uuid = uuid::Uuid::parse_str(id.as_ref()).unwrap();
        assert_eq!(uuid.get_version_num(), 4);
    }

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
            "1",
            "a1a2a3a4b1b2c1c2d1d2d3d4d5d6d7d8",
            "{a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8}",
            "urn:uuid:a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8",
            "g1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8",
            "a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8 ",
            " a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8",
            "507f1f77bcf86cd799439011",
        ] {
            assert_eq!(OrderId::parse(raw), None, "{raw:?}");
        }
    }
}
