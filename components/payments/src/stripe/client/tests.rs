//! The request shapes and the reading of answers, against replies recorded from
//! localstripe 1.15.10 (trimmed of the fields payments does not read).

use std::cell::RefCell;
use std::collections::VecDeque;

use futures::executor::block_on;

use super::*;
use crate::stripe::IntentStatus;

/// Answers with scripted responses and records the requests.
#[derive(Default)]
struct Recording {
    answers: RefCell<VecDeque<anyhow::Result<HttpResponse>>>,
    requests: RefCell<Vec<HttpRequest>>,
}

impl Recording {
    fn answering(status: u16, body: &str) -> Self {
        let recording = Self::default();
        recording.answers.borrow_mut().push_back(Ok(HttpResponse {
            status,
            body: body.as_bytes().to_vec(),
        }));
        recording
    }

    fn failing(message: &str) -> Self {
        let recording = Self::default();
        recording
            .answers
            .borrow_mut()
            .push_back(Err(anyhow!("{message}")));
        recording
    }
}

impl Transport for &Recording {
    async fn send(&self, request: HttpRequest) -> anyhow::Result<HttpResponse> {
        self.requests.borrow_mut().push(request);
        self.answers
            .borrow_mut()
            .pop_front()
            .expect("a scripted answer")
    }
}

fn config() -> Config {
    Config {
        api_base: "http://127.0.0.1:8420".into(),
        secret_key: "sk_test_123".into(),
    }
}

fn client(transport: &Recording) -> StripeClient<&Recording> {
    StripeClient::new(config(), transport)
}

/// The only request sent, checked to be an authenticated form POST to `path`.
fn one_form_post<'a>(requests: &'a [HttpRequest], path: &str) -> &'a HttpRequest {
    let [request] = requests else {
        panic!("expected one request, got {requests:?}");
    };
    assert_eq!(request.method, Method::Post);
    assert_eq!(request.url, format!("http://127.0.0.1:8420{path}"));
    assert_eq!(request.header("authorization"), Some("Bearer sk_test_123"));
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    request
}

/// A request's form body as text.
fn body_of(request: &HttpRequest) -> String {
    String::from_utf8(request.body.clone()).expect("a UTF-8 form body")
}

fn intent(payment_method: Option<&str>) -> NewPaymentIntent {
    NewPaymentIntent {
        amount_cents: 1099,
        order_id: "9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5".into(),
        payment_method: payment_method.map(str::to_owned),
        customer: None,
        idempotency_key: "pi-create-9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5-pm_card_visa".into(),
    }
}

const SUCCEEDED: &str = r#"{
  "amount": 1099,
  "capture_method": "automatic_async",
  "charges": {"data": [], "has_more": false, "object": "list", "total_count": 1},
  "client_secret": "pi_0j6QnQ2IBLppkQ_secret_6gkWwZk3vkzjlsaD",
  "created": 1795488326,
  "currency": "usd",
  "customer": null,
  "id": "pi_0j6QnQ2IBLppkQ",
  "invoice": null,
  "last_payment_error": null,
  "latest_charge": {"id": "ch_wCo2lZTbElg5qw", "object": "charge", "status": "succeeded"},
  "livemode": false,
  "metadata": {"orderId": "9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5"},
  "next_action": null,
  "object": "payment_intent",
  "payment_method": "pm_card_visa",
  "status": "succeeded"
}
"#;

const REQUIRES_PAYMENT_METHOD: &str = r#"{
  "amount": 1099,
  "client_secret": "pi_mons3ukPuVwf8d_secret_NHJX6cJ7ksZ81EbP",
  "currency": "usd",
  "id": "pi_mons3ukPuVwf8d",
  "last_payment_error": null,
  "latest_charge": null,
  "metadata": {"orderId": "9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5"},
  "object": "payment_intent",
  "payment_method": null,
  "status": "requires_payment_method"
}
"#;

const DECLINED: &str = r#"{
  "error": {
    "charge": "ch_IOu76IZRthVt5A",
    "code": "card_declined",
    "message": "Your card was declined.",
    "type": "invalid_request_error"
  }
}
"#;

#[test]
fn creating_and_confirming_sends_the_form_localstripe_accepts() {
    let transport = Recording::answering(200, SUCCEEDED);
    let intent =
        block_on(client(&transport).create_payment_intent(&intent(Some("pm_card_visa")))).unwrap();

    assert_eq!(intent.id, "pi_0j6QnQ2IBLppkQ");
    assert_eq!(intent.status, IntentStatus::Succeeded);
    assert_eq!((intent.amount, intent.currency.as_str()), (1099, "usd"));
    assert_eq!(
        intent.order_id(),
        Some("9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5")
    );

    let requests = transport.requests.borrow();
    let request = one_form_post(&requests, "/v1/payment_intents");
    assert_eq!(
        request.header("idempotency-key"),
        Some("pi-create-9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5-pm_card_visa")
    );
    assert_eq!(
        body_of(request),
        "amount=1099&currency=usd&payment_method_types%5B%5D=card\
         &metadata%5BorderId%5D=9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5\
         &payment_method=pm_card_visa&confirm=true"
    );
}

#[test]
fn the_orders_customer_is_named_next_to_the_payment_method() {
    let transport = Recording::answering(200, SUCCEEDED);
    let with_customer = NewPaymentIntent {
        customer: Some("cus_Qw3rTy5xYz12ab".into()),
        ..intent(Some("pm_1ABCdef"))
    };
    block_on(client(&transport).create_payment_intent(&with_customer)).unwrap();
    let request = &transport.requests.borrow()[0];
    assert_eq!(
        body_of(request),
        "amount=1099&currency=usd&payment_method_types%5B%5D=card\
         &metadata%5BorderId%5D=9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5\
         &customer=cus_Qw3rTy5xYz12ab&payment_method=pm_1ABCdef&confirm=true"
    );
    // The key stays the order's and the payment method's.
    assert_eq!(
        request.header("idempotency-key"),
        Some("pi-create-9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5-pm_card_visa")
    );
}

#[test]
fn without_a_payment_method_the_intent_is_only_created() {
    let transport = Recording::answering(200, REQUIRES_PAYMENT_METHOD);
    let intent = block_on(client(&transport).create_payment_intent(&intent(None))).unwrap();
    assert_eq!(intent.status, IntentStatus::RequiresPaymentMethod);
    assert_eq!(
        intent.client_secret.as_deref(),
        Some("pi_mons3ukPuVwf8d_secret_NHJX6cJ7ksZ81EbP")
    );
    let body = body_of(&transport.requests.borrow()[0]);
    assert!(!body.contains("confirm"), "{body}");
    assert!(!body.contains("payment_method="), "{body}");
}

#[test]
fn retrieving_gets_the_intent() {
    let transport = Recording::answering(200, SUCCEEDED);
    let intent = block_on(client(&transport).retrieve_payment_intent("pi_0j6QnQ2IBLppkQ")).unwrap();
    assert_eq!(intent.status, IntentStatus::Succeeded);
    let request = &transport.requests.borrow()[0];
    assert_eq!(request.method, Method::Get);
    assert_eq!(
        request.url,
        "http://127.0.0.1:8420/v1/payment_intents/pi_0j6QnQ2IBLppkQ"
    );
    assert_eq!(request.header("authorization"), Some("Bearer sk_test_123"));
    assert_eq!(request.header("idempotency-key"), None);
    assert!(request.body.is_empty());
}

/// localstripe's answer to `POST /v1/setup_intents`.
const SETUP_INTENT: &str = r#"{
  "client_secret": "seti_4Mm5Xq3TlyCgSw_secret_1Xb7Vq0P2lGdNwHc",
  "customer": "cus_Qw3rTy5xYz12ab",
  "id": "seti_4Mm5Xq3TlyCgSw",
  "metadata": {"orderId": "9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5"},
  "next_action": null,
  "object": "setup_intent",
  "payment_method": null,
  "payment_method_types": ["card"],
  "status": "requires_payment_method",
  "usage": "on_session"
}
"#;

fn new_setup() -> NewSetupIntent {
    NewSetupIntent {
        customer: "cus_Qw3rTy5xYz12ab".into(),
        order_id: "9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5".into(),
    }
}

#[test]
fn a_setup_intent_is_created_on_session_for_cards_of_the_customer() {
    let transport = Recording::answering(200, SETUP_INTENT);
    let setup = block_on(client(&transport).create_setup_intent(&new_setup())).unwrap();

    assert_eq!(setup.id, "seti_4Mm5Xq3TlyCgSw");
    assert_eq!(
        setup.client_secret.as_deref(),
        Some("seti_4Mm5Xq3TlyCgSw_secret_1Xb7Vq0P2lGdNwHc")
    );
    let requests = transport.requests.borrow();
    let request = one_form_post(&requests, "/v1/setup_intents");
    // A fresh intent each time: no key that would replay an earlier one.
    assert_eq!(request.header("idempotency-key"), None);
    assert_eq!(
        body_of(request),
        "customer=cus_Qw3rTy5xYz12ab&usage=on_session&payment_method_types%5B%5D=card\
         &metadata%5BorderId%5D=9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5"
    );
}

/// localstripe's answer to `POST /v1/customers`.
const CUSTOMER: &str = r#"{
  "account_balance": 0,
  "created": 1795498177,
  "currency": "eur",
  "default_source": null,
  "id": "cus_hFjoDb0uW3GcZm",
  "invoice_settings": {"default_payment_method": null},
  "livemode": false,
  "metadata": {"orderId": "9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5", "userId": "42"},
  "object": "customer",
  "sources": {"data": [], "has_more": false, "object": "list", "total_count": 0}
}
"#;

fn new_customer() -> NewCustomer {
    NewCustomer {
        user_id: "42".into(),
        order_id: "9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5".into(),
    }
}

#[test]
fn a_customer_is_created_with_its_buyer_and_order_as_metadata() {
    let transport = Recording::answering(200, CUSTOMER);
    let customer = block_on(client(&transport).create_customer(&new_customer())).unwrap();

    assert_eq!(customer.id, "cus_hFjoDb0uW3GcZm");
    let requests = transport.requests.borrow();
    let request = one_form_post(&requests, "/v1/customers");
    assert_eq!(request.header("idempotency-key"), None);
    assert_eq!(
        body_of(request),
        "metadata%5BuserId%5D=42\
         &metadata%5BorderId%5D=9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5"
    );
}

/// localstripe 1.15.10's answer to `POST /v1/refunds`, trimmed.
const REFUND: &str = r#"{
  "amount": 1099,
  "charge": "ch_n1bqTpR6H9wpxy",
  "created": 1795488400,
  "currency": "usd",
  "id": "re_4Xh6Jn7gSAXkmq",
  "metadata": {"orderId": "9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5"},
  "object": "refund",
  "payment_intent": "pi_0j6QnQ2IBLppkQ",
  "status": "succeeded"
}"#;

fn new_refund() -> NewRefund {
    NewRefund {
        payment_intent: "pi_0j6QnQ2IBLppkQ".into(),
        order_id: "9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5".into(),
        idempotency_key: "refund-pi_0j6QnQ2IBLppkQ".into(),
    }
}

#[test]
fn a_refund_is_asked_for_with_async_stripes_form_and_the_charges_key() {
    let transport = Recording::answering(200, REFUND);
    let refund = block_on(client(&transport).create_refund(&new_refund())).unwrap();

    assert_eq!(refund.id, "re_4Xh6Jn7gSAXkmq");
    assert_eq!(refund.status.as_deref(), Some("succeeded"));
    let requests = transport.requests.borrow();
    let request = one_form_post(&requests, "/v1/refunds");
    assert_eq!(
        request.header("idempotency-key"),
        Some("refund-pi_0j6QnQ2IBLppkQ")
    );
    // The whole charge (no amount), named by its PaymentIntent: what both Stripe and
    // localstripe accept.
    let body = body_of(request);
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [
            (
                "metadata[orderId]".to_owned(),
                "9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5".to_owned()
            ),
            ("payment_intent".to_owned(), "pi_0j6QnQ2IBLppkQ".to_owned()),
        ]
    );
}

#[test]
fn refunds_are_read_leniently_and_fail_like_the_others() {
    // Only the id is required of an answer.
    let transport = Recording::answering(200, r#"{"id": "re_1"}"#);
    let refund = block_on(client(&transport).create_refund(&new_refund())).unwrap();
    assert_eq!((refund.id.as_str(), refund.status), ("re_1", None));

    let transport = Recording::failing("connection refused");
    let err = block_on(client(&transport).create_refund(&new_refund())).unwrap_err();
    assert!(matches!(err, StripeError::Unavailable(_)), "{err}");

    let transport = Recording::answering(
        400,
        r#"{"error": {"message": "Charge ch_1 has already been refunded.", "type": "invalid_request_error"}}"#,
    );
    let err = block_on(client(&transport).create_refund(&new_refund())).unwrap_err();
    assert!(
        matches!(&err, StripeError::Rejected { status: 400, message, .. } if message.contains("already been refunded")),
        "{err}"
    );
}

#[test]
fn customer_failures_are_read_like_the_others() {
    let customer_error = |status: u16, body: &str| {
        let transport = Recording::answering(status, body);
        block_on(client(&transport).create_customer(&new_customer())).unwrap_err()
    };
    assert!(matches!(
        customer_error(400, r#"{"error": {"message": "Unexpected foo"}}"#),
        StripeError::Rejected { status: 400, .. }
    ));
    assert!(matches!(
        customer_error(502, ""),
        StripeError::Unavailable(_)
    ));
    assert!(matches!(
        customer_error(200, r#"{"object": "customer"}"#),
        StripeError::Unexpected(_)
    ));
    let transport = Recording::failing("connection refused");
    assert!(matches!(
        block_on(client(&transport).create_customer(&new_customer())),
        Err(StripeError::Unavailable(_))
    ));
}

#[test]
fn setup_intent_failures_are_read_like_payment_intent_ones() {
    let setup_error = |status: u16, body: &str| {
        let transport = Recording::answering(status, body);
        block_on(client(&transport).create_setup_intent(&new_setup())).unwrap_err()
    };
    let localstripe =
        r#"{"error": {"message": "Unexpected foo", "type": "invalid_request_error"}}"#;
    assert!(matches!(
        setup_error(400, localstripe),
        StripeError::Rejected { status: 400, message, .. } if message == "Unexpected foo"
    ));
    assert!(matches!(setup_error(503, ""), StripeError::Unavailable(_)));
    assert!(matches!(
        setup_error(200, r#"{"object": "setup_intent"}"#),
        StripeError::Unexpected(_)
    ));
    let transport = Recording::failing("connection refused");
    assert!(matches!(
        block_on(client(&transport).create_setup_intent(&new_setup())),
        Err(StripeError::Unavailable(_))
    ));
}

#[test]
fn odd_ids_are_never_put_in_a_path() {
    let transport = Recording::default();
    for id in ["", "pi_1/../../v1/charges", "pi_1?expand=x", "pi 1"] {
        let result = block_on(client(&transport).retrieve_payment_intent(id));
        assert!(matches!(result, Err(StripeError::Unexpected(_))), "{id:?}");
    }
    assert!(transport.requests.borrow().is_empty());
}

fn error_of(status: u16, body: &str) -> StripeError {
    let transport = Recording::answering(status, body);
    block_on(client(&transport).create_payment_intent(&intent(Some("pm_card_visa")))).unwrap_err()
}

#[test]
fn a_decline_carries_stripes_message() {
    assert!(matches!(
        error_of(402, DECLINED),
        StripeError::Declined(message) if message == "Your card was declined."
    ));
    assert!(matches!(
        error_of(402, ""),
        StripeError::Declined(message) if message == "Stripe answered 402"
    ));
}

#[test]
fn request_errors_keep_status_message_and_param() {
    let real_stripe = r#"{"error": {"code": "resource_missing", "param": "payment_method",
        "message": "No such PaymentMethod: 'pm_nope'", "type": "invalid_request_error"}}"#;
    let StripeError::Rejected {
        status,
        message,
        param,
    } = error_of(400, real_stripe)
    else {
        panic!("expected Rejected");
    };
    assert_eq!(status, 400);
    assert_eq!(message, "No such PaymentMethod: 'pm_nope'");
    assert_eq!(param.as_deref(), Some("payment_method"));

    let localstripe = r#"{"error": {"message": "Not Found", "type": "invalid_request_error"}}"#;
    assert!(matches!(
        error_of(404, localstripe),
        StripeError::Rejected {
            status: 404,
            param: None,
            ..
        }
    ));
}

#[test]
fn outages_are_unavailable() {
    for (status, body) in [
        (
            500,
            r#"{"error": {"message": "Internal", "type": "api_error"}}"#,
        ),
        (502, "<html>Bad Gateway</html>"),
        (503, ""),
        (429, r#"{"error": {"message": "Too many requests"}}"#),
    ] {
        assert!(
            matches!(error_of(status, body), StripeError::Unavailable(_)),
            "{status}"
        );
    }
    let transport = Recording::failing("connection refused");
    let err = block_on(client(&transport).create_payment_intent(&intent(None))).unwrap_err();
    let StripeError::Unavailable(detail) = err else {
        panic!("expected Unavailable");
    };
    assert!(detail.contains("connection refused"), "{detail}");
    assert!(!detail.contains("sk_test"), "{detail}");
}

#[test]
fn a_concurrent_request_with_the_same_key_is_in_progress() {
    let body = r#"{"error": {"code": "idempotency_key_in_use", "message": "...", "type": "idempotency_error"}}"#;
    assert!(matches!(error_of(409, body), StripeError::InProgress));
}

#[test]
fn a_refused_key_or_an_unreadable_answer_is_unexpected() {
    let unauthorized = r#"{"error": {"message": "Unauthorized", "type": "invalid_request_error"}}"#;
    let StripeError::Unexpected(err) = error_of(401, unauthorized) else {
        panic!("expected Unexpected");
    };
    assert!(format!("{err:#}").contains("stripe_secret_key"), "{err:#}");
    assert!(!format!("{err:#}").contains("sk_test"), "{err:#}");

    assert!(matches!(
        error_of(200, "<html>"),
        StripeError::Unexpected(_)
    ));
    assert!(matches!(
        error_of(200, r#"{"object": "payment_intent"}"#),
        StripeError::Unexpected(_)
    ));
}

#[test]
fn configuration_defaults_and_checks() {
    let vars: &[(&str, &str)] = &[("stripe_secret_key", "sk_live_x")];
    let config = Config::from_source(vars).unwrap();
    assert_eq!(config.api_base, "https://api.stripe.com");
    assert_eq!(config.secret_key, "sk_live_x");
    assert!(!format!("{config:?}").contains("sk_live_x"));

    let vars: &[(&str, &str)] = &[
        ("stripe_secret_key", "sk_test_x"),
        ("stripe_api_base", "http://127.0.0.1:8420/"),
    ];
    assert_eq!(
        Config::from_source(vars).unwrap().api_base,
        "http://127.0.0.1:8420"
    );

    let err = Config::from_source(&[][..] as &[(&str, &str)]).unwrap_err();
    assert!(err.to_string().contains("`stripe_secret_key`"), "{err}");
    for base in ["api.stripe.com", "ftp://x", "https://", "https://host/v1"] {
        let vars: &[(&str, &str)] = &[("stripe_secret_key", "sk_x"), ("stripe_api_base", base)];
        let err = Config::from_source(vars).unwrap_err();
        assert!(
            err.to_string().contains("`stripe_api_base`"),
            "{base}: {err}"
        );
    }
}
