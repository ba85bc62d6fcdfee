//! JSON request and response bodies.
//!
//! Bodies over [`MAX_BODY_BYTES`] are refused with 413; bad JSON or a value of the
//! wrong type is a 400 whose message says what is wrong (and names the field), never
//! a 500. Unknown fields are ignored (serde's default), as the contract requires.

use serde::Serialize;
use serde::de::DeserializeOwned;
use spin_sdk::http::Response;

use crate::error::{ApiError, FieldError};

/// Largest request body any service accepts (64 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Message for a body that is empty or not JSON at all.
pub const INVALID_JSON_MESSAGE: &str = "Request body must be valid JSON";

/// Parses a request body into `T`.
///
/// Fields that clients may omit or send with the wrong type should be
/// `Option<serde_json::Value>` in `T`, so the handler can report them with its own
/// validation message; this function only catches what `T` itself rejects.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(describe)?;
    // Reject trailing garbage after the JSON value, as `serde_json::from_slice` does.
    de.end()
        .map_err(|_| ApiError::BadRequest(INVALID_JSON_MESSAGE.to_owned()))?;
    Ok(value)
}

/// Turns a serde error into the 400 a client can act on.
fn describe(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let inner = err.inner();
    if !inner.is_data() {
        // Syntax errors, truncated input and the empty body.
        return ApiError::BadRequest(INVALID_JSON_MESSAGE.to_owned());
    }
    let message = inner.to_string();
    let detail = without_position(&message);
    let path = err.path().to_string();
    if path != "." {
        return ApiError::Validation(vec![FieldError::new(
            path.as_str(),
            format!("Invalid value for {path}: {detail}"),
        )]);
    }
    // serde reports a missing field at the parent, as "missing field `name`".
    if let Some(field) = detail
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return ApiError::Validation(vec![FieldError::new(field, format!("{field} is required"))]);
    }
    ApiError::BadRequest(format!("Invalid request body: {detail}"))
}

/// serde_json appends " at line L column C", which means nothing to an API client.
fn without_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(index) => &message[..index],
        None => message,
    }
}

/// A JSON response with the given status.
pub fn json_response<T: Serialize + ?Sized>(status: u16, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(body)
            .build(),
        Err(err) => spin_sdk::http::IntoResponse::into_response(ApiError::Unexpected(
            anyhow::Error::new(err).context("Failed to serialize the response body"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Ticket {
        title: String,
        price: f64,
        #[serde(default)]
        note: Option<String>,
    }

    fn message_of(err: &ApiError) -> (Option<String>, String) {
        let body = err.body();
        assert_eq!(body.errors.len(), 1, "{body:?}");
        (body.errors[0].field.clone(), body.errors[0].message.clone())
    }

    #[test]
    fn parses_valid_bodies_and_ignores_unknown_fields() {
        let ticket: Ticket =
            parse_body(br#"{"title":"Concert","price":10.5,"extra":[1,2]}"#).unwrap();
        assert_eq!(
            ticket,
            Ticket {
                title: "Concert".into(),
                price: 10.5,
                note: None
            }
        );
    }

    #[test]
    fn empty_and_malformed_bodies_are_bad_requests() {
        for body in [
            &b""[..],
            b"   ",
            b"{",
            b"not json",
            b"{\"title\": }",
            br#"{"title":"a","price":1} {}"#,
            b"\xff",
        ] {
            let err = parse_body::<Ticket>(body).unwrap_err();
            assert_eq!(err.status(), 400, "{body:?}");
            assert_eq!(
                message_of(&err),
                (None, INVALID_JSON_MESSAGE.into()),
                "{body:?}"
            );
        }
    }

    #[test]
    fn wrong_types_name_the_field() {
        let err = parse_body::<Ticket>(br#"{"title":"Concert","price":"ten"}"#).unwrap_err();
        assert_eq!(err.status(), 400);
        let (field, message) = message_of(&err);
        assert_eq!(field.as_deref(), Some("price"));
        assert!(
            message.starts_with("Invalid value for price: invalid type"),
            "{message}"
        );
        assert!(!message.contains("line"), "{message}");
    }

    #[test]
    fn missing_fields_name_the_field() {
        let err = parse_body::<Ticket>(br#"{"price":1}"#).unwrap_err();
        assert_eq!(
            message_of(&err),
            (Some("title".into()), "title is required".into())
        );
    }

    #[test]
    fn non_objects_are_bad_requests() {
        for body in [&b"42"[..], b"\"text\"", b"null"] {
            let err = parse_body::<Ticket>(body).unwrap_err();
            assert_eq!(err.status(), 400);
            let (field, message) = message_of(&err);
            assert_eq!(field, None);
            assert!(
                message.starts_with("Invalid request body: invalid type"),
                "{message}"
            );
        }
    }

    #[test]
    fn oversized_bodies_are_refused() {
        let mut body = br#"{"title":""#.to_vec();
        body.resize(MAX_BODY_BYTES + 1, b'a');
        let err = parse_body::<Ticket>(&body).unwrap_err();
        assert_eq!(err.status(), 413);
    }

    #[test]
    fn json_responses_carry_status_and_content_type() {
        let response = json_response(201, &json!({"id": "1"}));
        assert_eq!(*response.status(), 201);
        assert_eq!(
            response.header("content-type").and_then(|v| v.as_str()),
            Some("application/json")
        );
        assert_eq!(response.body(), br#"{"id":"1"}"#);
    }
}
