//! The error side of the HTTP contract.
//!
//! Every error response is `{"errors": [{"message": "...", "field": "..."}]}`, where
//! `field` appears only for validation errors. [`ApiError`] fixes the status code and
//! the messages for each kind of failure so that every service answers alike.

use serde::Serialize;
use spin_sdk::http::{IntoResponse, Response};

/// Message of the 500 answer; the details only go to the log.
pub const UNEXPECTED_MESSAGE: &str = "Something went wrong";

/// One entry of the `errors` array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Human-readable message, shown as-is by the web client.
    pub message: String,
    /// The request body field the message is about (validation errors only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl FieldError {
    /// A validation failure of `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// A message that is not about one field.
    pub fn general(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            field: None,
        }
    }
}

/// The error body `{"errors": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    /// One entry per failed rule.
    pub errors: Vec<FieldError>,
}

/// Every way a request can fail, each with its status code and body.
#[derive(Debug)]
pub enum ApiError {
    /// 400, one entry per failed rule, each naming its field.
    Validation(Vec<FieldError>),
    /// 400 with a message that is not about a single field (`Email in use`).
    BadRequest(String),
    /// 401 `Not authorized`: not signed in, or not the owner.
    NotAuthorized,
    /// 402 with the payment provider's message (a declined card).
    PaymentRequired(String),
    /// 404 `Not Found`: unknown or malformed id, unknown route, wrong method.
    NotFound,
    /// 409: a concurrent change won.
    Conflict(String),
    /// 413: the request body is over the size limit.
    PayloadTooLarge,
    /// 500 with a generic message; the error chain is only logged.
    Unexpected(anyhow::Error),
    /// 503: a service this one depends on (e.g. the payment provider) cannot be reached
    /// or failed; the message says which, the details are only logged by the caller.
    Unavailable(String),
}

impl ApiError {
    /// A single validation failure.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// The HTTP status code of this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::Validation(_) | Self::BadRequest(_) => 400,
            Self::NotAuthorized => 401,
            Self::PaymentRequired(_) => 402,
            Self::NotFound => 404,
            Self::Conflict(_) => 409,
            Self::PayloadTooLarge => 413,
            Self::Unexpected(_) => 500,
            Self::Unavailable(_) => 503,
        }
    }

    /// The body sent to the client; never contains the details of an unexpected error.
    pub fn body(&self) -> ErrorBody {
        let errors = match self {
            Self::Validation(errors) => errors.clone(),
            Self::BadRequest(message)
            | Self::PaymentRequired(message)
            | Self::Conflict(message)
            | Self::Unavailable(message) => vec![FieldError::general(message.as_str())],
            Self::NotAuthorized => vec![FieldError::general("Not authorized")],
            Self::NotFound => vec![FieldError::general("Not Found")],
            Self::PayloadTooLarge => vec![FieldError::general("Request body is too large")],
            Self::Unexpected(_) => vec![FieldError::general(UNEXPECTED_MESSAGE)],
        };
        ErrorBody { errors }
    }

    /// The serialized body.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing strings cannot fail; fall back to a fixed body just in case.
        serde_json::to_vec(&self.body())
            .unwrap_or_else(|_| br#"{"errors":[{"message":"Something went wrong"}]}"#.to_vec())
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        Self::Unexpected(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Unexpected(err) = &self {
            // `{:#}` prints the whole context chain on one line.
            eprintln!("unexpected error: {err:#}");
        }
        Response::builder()
            .status(self.status())
            .header("content-type", "application/json")
            .body(self.to_json())
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn body_of(err: &ApiError) -> Value {
        serde_json::from_slice(&err.to_json()).unwrap()
    }

    #[test]
    fn status_codes_follow_the_contract() {
        let cases = [
            (ApiError::field("email", "Email must be valid"), 400),
            (ApiError::BadRequest("Email in use".into()), 400),
            (ApiError::NotAuthorized, 401),
            (
                ApiError::PaymentRequired("Your card was declined.".into()),
                402,
            ),
            (ApiError::NotFound, 404),
            (ApiError::Conflict("Ticket changed".into()), 409),
            (ApiError::PayloadTooLarge, 413),
            (ApiError::Unexpected(anyhow::anyhow!("db down")), 500),
            (
                ApiError::Unavailable("Payment provider unavailable".into()),
                503,
            ),
        ];
        for (err, status) in cases {
            assert_eq!(err.status(), status, "{err:?}");
        }
    }

    #[test]
    fn validation_errors_name_their_field() {
        let err = ApiError::Validation(vec![
            FieldError::new("email", "Email must be valid"),
            FieldError::new("password", "Password must be between 4 and 20 characters"),
        ]);
        assert_eq!(
            body_of(&err),
            json!({"errors": [
                {"message": "Email must be valid", "field": "email"},
                {"message": "Password must be between 4 and 20 characters", "field": "password"},
            ]})
        );
    }

    #[test]
    fn field_is_omitted_when_absent() {
        assert_eq!(
            body_of(&ApiError::NotFound),
            json!({"errors": [{"message": "Not Found"}]})
        );
        assert_eq!(
            body_of(&ApiError::NotAuthorized),
            json!({"errors": [{"message": "Not authorized"}]})
        );
        assert_eq!(
            body_of(&ApiError::BadRequest("Email in use".into())),
            json!({"errors": [{"message": "Email in use"}]})
        );
        assert_eq!(
            body_of(&ApiError::PaymentRequired("Your card was declined.".into())),
            json!({"errors": [{"message": "Your card was declined."}]})
        );
        assert_eq!(
            body_of(&ApiError::Unavailable(
                "Payment provider unavailable".into()
            )),
            json!({"errors": [{"message": "Payment provider unavailable"}]})
        );
    }

    #[test]
    fn unexpected_errors_hide_their_details() {
        let err = ApiError::from(anyhow::anyhow!("password=hunter2 leaked"));
        let body = String::from_utf8(err.to_json()).unwrap();
        assert_eq!(body, r#"{"errors":[{"message":"Something went wrong"}]}"#);
    }

    #[test]
    fn responses_are_json() {
        let response = ApiError::PayloadTooLarge.into_response();
        assert_eq!(*response.status(), 413);
        assert_eq!(
            response.header("content-type").and_then(|v| v.as_str()),
            Some("application/json")
        );
    }
}
