//! POST /api/users/signin `{email, password}` → 200 `{id, email}` + session cookie.

use common::ApiError;
use common::session::SessionUser;
use spin_sdk::http::{Request, Response};

use super::{Credentials, Deps, signed_in, validated};
use crate::domain::{Email, Password};
use crate::store::UserStore;

/// Same message for an unknown email and a wrong password.
pub const INVALID_CREDENTIALS: &str = "Invalid credentials";

/// Checks the password and signs the user in.
pub fn handle(req: &Request, deps: &Deps<impl UserStore>) -> Result<Response, ApiError> {
    let body = Credentials::parse(req.body())?;
    let (email, password) = validated(
        Email::parse(body.email()),
        Password::parse_existing(body.password()),
    )?;

    let Some(user) = deps.store.find_by_email(&email)? else {
        // Spend the same argon2 time as for a known user, so timing does not tell
        // which emails have accounts.
        deps.hasher.verify_dummy(&password);
        return Err(invalid_credentials());
    };
    if !deps.hasher.verify(&password, &user.password_hash)? {
        return Err(invalid_credentials());
    }

    let session_user = SessionUser {
        id: &user.id,
        email: &user.email,
    };
    signed_in(200, session_user, &deps.session, deps.now)
}

fn invalid_credentials() -> ApiError {
    ApiError::BadRequest(INVALID_CREDENTIALS.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::{signup, testing::*};
    use serde_json::json;

    fn signed_up() -> (Deps<MemoryStore>, String) {
        let deps = deps();
        let response =
            signup::handle(&post(json!({"email": "a@b.co", "password": "pass"})), &deps).unwrap();
        let id = body_json(&response)["id"].as_str().unwrap().to_owned();
        (deps, id)
    }

    #[test]
    fn signs_in_with_normalised_email_and_trimmed_password() {
        let (deps, id) = signed_up();
        let response = handle(
            &post(json!({"email": " A@B.co", "password": " pass  "})),
            &deps,
        )
        .unwrap();
        assert_eq!(*response.status(), 200);
        assert_eq!(body_json(&response), json!({"id": id, "email": "a@b.co"}));
        let claims = session_claims(&response).expect("a valid session cookie");
        assert_eq!(claims.id, id);
    }

    #[test]
    fn wrong_password_and_unknown_email_look_the_same() {
        let (deps, _) = signed_up();
        for body in [
            json!({"email": "a@b.co", "password": "wrong"}),
            json!({"email": "nobody@b.co", "password": "pass"}),
        ] {
            let response = handle(&post(body), &deps);
            assert_error(response, 400, json!([{"message": "Invalid credentials"}]));
        }
    }

    #[test]
    fn validates_before_looking_up() {
        let response = handle(&post(json!({"email": "bad", "password": ""})), &deps());
        assert_error(
            response,
            400,
            json!([
                {"message": "Email must be valid", "field": "email"},
                {"message": "You must supply a password", "field": "password"},
            ]),
        );
    }

    #[test]
    fn a_corrupt_stored_hash_is_a_500() {
        let deps = deps();
        deps.store.put("a@b.co", "not-a-phc-string");
        let response = handle(&post(json!({"email": "a@b.co", "password": "pass"})), &deps);
        assert_error(response, 500, json!([{"message": "Something went wrong"}]));
    }
}
