//! GET /api/payments/config → `{publishableKey, stripeJsUrl}`: what the browser needs
//! to load Stripe.js, so no key or URL is compiled into the web client. Public (no
//! session): the publishable key is meant for browsers.

use common::config::Source;
use common::json;
use serde::Serialize;
use spin_sdk::http::Response;

/// Stripe.js when the variable `stripe_js_url` is unset.
pub const DEFAULT_STRIPE_JS_URL: &str = "https://js.stripe.com/v3/";

/// The browser's Stripe settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientConfig {
    /// `pk_…` (variable `stripe_publishable_key`, required).
    pub publishable_key: String,
    /// Where Stripe.js is loaded from (variable `stripe_js_url`); localstripe serves a
    /// stand-in at `<base>/js.stripe.com/v3/`.
    pub stripe_js_url: String,
}

impl ClientConfig {
    /// Reads `stripe_publishable_key` and `stripe_js_url` (default
    /// [`DEFAULT_STRIPE_JS_URL`]).
    pub fn from_source(source: &(impl Source + ?Sized)) -> anyhow::Result<Self> {
        Ok(Self {
            publishable_key: source.required("stripe_publishable_key")?,
            stripe_js_url: source.get_or("stripe_js_url", DEFAULT_STRIPE_JS_URL.to_owned())?,
        })
    }
}

/// 200 with the settings.
pub fn handle(config: &ClientConfig) -> Response {
    json::json_response(200, config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_key_and_stripe_js() {
        let vars: &[(&str, &str)] = &[("stripe_publishable_key", "pk_test_123")];
        let response = handle(&ClientConfig::from_source(vars).unwrap());
        assert_eq!(*response.status(), 200);
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(response.body()).unwrap(),
            serde_json::json!({
                "publishableKey": "pk_test_123",
                "stripeJsUrl": "https://js.stripe.com/v3/",
            })
        );
    }

    #[test]
    fn the_script_url_can_point_at_localstripe() {
        let vars: &[(&str, &str)] = &[
            ("stripe_publishable_key", "pk_test_123"),
            ("stripe_js_url", "http://127.0.0.1:8420/js.stripe.com/v3/"),
        ];
        assert_eq!(
            ClientConfig::from_source(vars).unwrap().stripe_js_url,
            "http://127.0.0.1:8420/js.stripe.com/v3/"
        );
    }

    #[test]
    fn the_publishable_key_is_required() {
        let err = ClientConfig::from_source(&[][..] as &[(&str, &str)]).unwrap_err();
        assert!(
            err.to_string().contains("`stripe_publishable_key`"),
            "{err}"
        );
    }
}
