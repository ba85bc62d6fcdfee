//! POST /api/users/signup `{email, password}` → 201 `{id, email}` + session cookie.

use common::ApiError;
use common::session::SessionUser;
use spin_sdk::http::{Request, Response};

use super::{Credentials, Deps, signed_in, validated};
use crate::domain::{Email, Password};
use crate::store::{InsertError, User, UserStore};

/// Message when the email belongs to another user.
pub const EMAIL_IN_USE: &str = "Email in use";

/// Creates the user and signs them in.
pub fn handle(req: &Request, deps: &Deps<impl UserStore>) -> Result<Response, ApiError> {
    let body = Credentials::parse(req.body())?;
    let (email, password) = validated(
        Email::parse(body.email()),
        Password::parse_new(body.password()),
    )?;

    // Cheap early answer that spares the argon2 work; the UNIQUE constraint below is
    // what actually decides between concurrent signups.
    if deps.store.find_by_email(&email)?.is_some() {
        return Err(email_in_use());
    }

    let user = User {
        id: uuid::Uuid::new_v4().to_string(),
        email: email.as_ref().to_owned(),
        password_hash: deps.hasher.hash(&password)?,
    };
    match deps.store.insert(&user, deps.now) {
        Ok(()) => {}
        Err(InsertError::EmailTaken) => return Err(email_in_use()),
        Err(InsertError::Other(err)) => return Err(err.into()),
    }

    let session_user = SessionUser {
        id: &user.id,
        email: &user.email,
    };
    signed_in(201, session_user, &deps.session, deps.now)
}

fn email_in_use() -> ApiError {
    ApiError::BadRequest(EMAIL_IN_USE.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::testing::*;
    use serde_json::json;

    #[test]
    fn creates_a_user_and_sets_the_cookie() {
        let deps = deps();
        let response = handle(
            &post(json!({"email": " A@Example.com ", "password": " pass "})),
            &deps,
        )
        .unwrap();
        assert_eq!(*response.status(), 201);
        let body = body_json(&response);
        assert_eq!(body["email"], "a@example.com");
        let id = body["id"].as_str().unwrap();
        assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
        assert_eq!(body.as_object().unwrap().len(), 2, "{body}");

        let claims = session_claims(&response).expect("a valid session cookie");
        assert_eq!(
            (claims.id.as_str(), claims.email.as_str()),
            (id, "a@example.com")
        );
        assert_eq!(claims.exp, NOW + TTL);

        let stored = deps.store.user("a@example.com").unwrap();
        assert_eq!(stored.id, id);
        assert!(stored.password_hash.starts_with("$argon2id$"));
        assert!(
            deps.hasher
                .verify(&password("pass"), &stored.password_hash)
                .unwrap()
        );
        assert_eq!(deps.store.created_at(id), Some(NOW));
    }

    #[test]
    fn reports_every_failed_rule() {
        let response = handle(&post(json!({"email": "nope", "password": "abc"})), &deps());
        assert_error(
            response,
            400,
            json!([
                {"message": "Email must be valid", "field": "email"},
                {"message": "Password must be between 4 and 20 characters", "field": "password"},
            ]),
        );
    }

    #[test]
    fn missing_fields_and_wrong_types_are_validation_errors() {
        for body in [
            json!({}),
            json!({"email": 5, "password": ["x"]}),
            json!({"email": null}),
        ] {
            let response = handle(&post(body), &deps());
            assert_error(
                response,
                400,
                json!([
                    {"message": "Email must be valid", "field": "email"},
                    {"message": "Password must be between 4 and 20 characters", "field": "password"},
                ]),
            );
        }
    }

    #[test]
    fn invalid_json_is_a_bad_request() {
        let response = handle(&post_raw(b"{\"email\":"), &deps());
        assert_error(
            response,
            400,
            json!([{"message": "Request body must be valid JSON"}]),
        );
    }

    #[test]
    fn oversized_bodies_are_refused() {
        let padding = "x".repeat(common::json::MAX_BODY_BYTES);
        let body = json!({"email": "a@b.co", "password": "pass", "padding": padding});
        assert_eq!(handle(&post(body), &deps()).unwrap_err().status(), 413);
    }

    #[test]
    fn an_email_in_use_is_refused_case_insensitively() {
        let deps = deps();
        handle(&post(json!({"email": "a@b.co", "password": "pass"})), &deps).unwrap();
        let response = handle(
            &post(json!({"email": "A@B.CO", "password": "other"})),
            &deps,
        );
        assert_error(response, 400, json!([{"message": "Email in use"}]));
    }

    #[test]
    fn losing_a_concurrent_signup_is_email_in_use() {
        // The pre-check passes, then the UNIQUE constraint fires (another request won).
        let deps = deps();
        deps.store.fail_next_insert_as_taken();
        let response = handle(&post(json!({"email": "a@b.co", "password": "pass"})), &deps);
        assert_error(response, 400, json!([{"message": "Email in use"}]));
    }

    #[test]
    fn store_failures_are_500s_without_details() {
        let deps = deps();
        deps.store.break_it();
        let response = handle(&post(json!({"email": "a@b.co", "password": "pass"})), &deps);
        assert_error(response, 500, json!([{"message": "Something went wrong"}]));
    }
}
