//! GET /api/orders/:id → 200 the order; 404 unknown or malformed id; 401 another
//! user's order.

use common::{ApiError, json};
use spin_sdk::http::{Request, Response};

use super::{Deps, OrderBody, owned_order};
use crate::store::OrderStore;

/// Shows one of the caller's orders.
pub fn handle(req: &Request, id: &str, deps: &Deps<impl OrderStore>) -> Result<Response, ApiError> {
    let user = deps.user(req)?;
    let order = owned_order(&deps.store, id, &user)?;
    Ok(json::json_response(200, &OrderBody::from(&order)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use serde_json::json;
    use spin_sdk::http::Method;

    fn placed(deps: &Deps<TestStore>) -> String {
        put_ticket(&deps.store, "t1", 2500);
        let req = request(
            Method::Post,
            "/api/orders",
            Some("owner"),
            Some(json!({"ticketId": "t1"})),
        );
        let response = crate::routes::create::handle(&req, deps, lock()).unwrap();
        body_json(&response)["id"].as_str().unwrap().to_owned()
    }

    fn get(deps: &Deps<TestStore>, id: &str, user: Option<&str>) -> Result<Response, ApiError> {
        handle(&request(Method::Get, "/", user, None), id, deps)
    }

    #[test]
    fn shows_the_owners_order() {
        let deps = deps();
        let id = placed(&deps);
        let response = get(&deps, &id, Some("owner")).unwrap();
        assert_eq!(*response.status(), 200);
        assert_eq!(
            body_json(&response),
            json!({
                "id": id,
                "userId": "owner",
                "status": "created",
                "expiresAt": "2027-01-15T08:03:00Z",
                "version": 0,
                "ticket": {"id": "t1", "title": "Show t1", "price": 25.0, "priceCents": 2500, "version": 0},
                "payment": null,
            })
        );
        // Ids are matched case-insensitively, as UUIDs.
        let upper = get(&deps, &id.to_uppercase(), Some("owner")).unwrap();
        assert_eq!(body_json(&upper)["id"], id.as_str());
    }

    #[test]
    fn unknown_and_malformed_ids_are_not_found() {
        let deps = deps();
        placed(&deps);
        for id in [
            "6f1c2d3e-0000-4000-8000-000000000000",
            "abc",
            "",
            "1 OR 1=1",
        ] {
            assert_error(
                get(&deps, id, Some("owner")),
                404,
                json!([{"message": "Not Found"}]),
            );
        }
    }

    #[test]
    fn another_users_order_is_not_authorized() {
        let deps = deps();
        let id = placed(&deps);
        assert_error(
            get(&deps, &id, Some("intruder")),
            401,
            json!([{"message": "Not authorized"}]),
        );
    }

    #[test]
    fn requires_a_session_before_anything_else() {
        let deps = deps();
        let id = placed(&deps);
        for id in [id.as_str(), "abc"] {
            assert_error(
                get(&deps, id, None),
                401,
                json!([{"message": "Not authorized"}]),
            );
        }
    }
}
