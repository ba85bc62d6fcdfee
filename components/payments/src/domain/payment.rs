//! A recorded payment, the card token a buyer pays with, and the idempotency keys
//! that make Stripe charge an order at most once per attempt.

use common::events::PaymentCreated;

use super::OrderId;

/// A payment Stripe reported as succeeded: at most one per order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// Our id (UUID v4).
    pub id: String,
    /// The order it pays for.
    pub order_id: OrderId,
    /// The Stripe PaymentIntent (`pi_…`).
    pub stripe_id: String,
}

impl Payment {
    /// A new payment of `order_id` by PaymentIntent `stripe_id`, with a fresh id.
    pub fn new(order_id: OrderId, stripe_id: impl Into<String>) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            order_id,
            stripe_id: stripe_id.into(),
        }
    }

    /// The `payment:created` event announcing it.
    pub fn event(&self) -> PaymentCreated {
        PaymentCreated {
            id: self.id.clone(),
            order_id: self.order_id.to_string(),
            stripe_id: self.stripe_id.clone(),
        }
    }
}

/// A Stripe PaymentMethod id sent by the browser as `token` (e.g. `pm_card_visa`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentMethod(String);

/// Message when `token` is present but is not a payment method id.
pub const INVALID_TOKEN: &str = "Token must be a Stripe payment method id";

/// Longest accepted token: Stripe ids are far shorter, and the idempotency key that
/// embeds it must stay within Stripe's 255 characters.
const MAX_TOKEN_LEN: usize = 200;

impl PaymentMethod {
    /// The trimmed token, if it looks like a Stripe object id (ASCII letters, digits and
    /// `_`). Whether Stripe knows it is for Stripe to say.
    pub fn parse(raw: &str) -> Option<Self> {
        let token = raw.trim();
        let valid = !token.is_empty()
            && token.len() <= MAX_TOKEN_LEN
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        valid.then(|| Self(token.to_owned()))
    }
}

impl AsRef<str> for PaymentMethod {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The `Idempotency-Key` for creating the PaymentIntent of `order_id`.
///
/// Without a payment method there is one intent per order, which the browser confirms
/// (possibly several times, with several cards): every retry gets the same intent back.
/// With one, the key also names the payment method, so an identical retry (a lost
/// response, a double submit of the same token) replays Stripe's first answer instead of
/// charging again, while another card after a decline is a new attempt: Stripe replays
/// declines too, so a key of the order alone would keep refusing the new card.
pub fn intent_key(order_id: &OrderId, method: Option<&PaymentMethod>) -> String {
    match method {
        None => format!("pi-create-{order_id}"),
        Some(method) => format!("pi-create-{order_id}-{}", method.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> OrderId {
        OrderId::parse("9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5").unwrap()
    }

    #[test]
    fn payments_announce_themselves() {
        let payment = Payment::new(order(), "pi_1");
        assert!(uuid::Uuid::parse_str(&payment.id).is_ok());
        assert_ne!(payment.id, Payment::new(order(), "pi_1").id);
        assert_eq!(
            payment.event(),
            PaymentCreated {
                id: payment.id.clone(),
                order_id: "9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5".into(),
                stripe_id: "pi_1".into(),
            }
        );
    }

    #[test]
    fn tokens_are_stripe_ids() {
        for raw in [
            "pm_card_visa",
            " pm_1Q2w3E4r5T6y ",
            "pm_card_chargeCustomerFail",
        ] {
            assert_eq!(PaymentMethod::parse(raw).unwrap().as_ref(), raw.trim());
        }
        let too_long = format!("pm_{}", "a".repeat(MAX_TOKEN_LEN));
        for raw in [
            "",
            "   ",
            "pm card",
            "pm-card",
            "pm_é",
            "pm_1\n2",
            too_long.as_str(),
        ] {
            assert_eq!(PaymentMethod::parse(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn keys_separate_orders_and_attempts_but_not_retries() {
        let visa = PaymentMethod::parse("pm_card_visa").unwrap();
        let other = PaymentMethod::parse("pm_card_mastercard").unwrap();
        assert_eq!(
            intent_key(&order(), None),
            "pi-create-9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5"
        );
        assert_eq!(
            intent_key(&order(), Some(&visa)),
            "pi-create-9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5-pm_card_visa"
        );
        assert_eq!(
            intent_key(&order(), Some(&visa)),
            intent_key(&order(), Some(&visa))
        );
        assert_ne!(
            intent_key(&order(), Some(&visa)),
            intent_key(&order(), Some(&other))
        );
        let longest = PaymentMethod::parse(&"p".repeat(MAX_TOKEN_LEN)).unwrap();
        assert!(intent_key(&order(), Some(&longest)).len() <= 255);
    }
}
