//! GET /api/orders → 200 the signed-in user's orders, oldest first, ticket embedded.

use common::{ApiError, json};
use spin_sdk::http::{Request, Response};

use super::{Deps, OrderBody};
use crate::store::OrderStore;

/// Lists the caller's orders.
pub fn handle(req: &Request, deps: &Deps<impl OrderStore>) -> Result<Response, ApiError> {
    let user = deps.user(req)?;
    let orders = deps.store.orders_of(&user.id)?;
    let body: Vec<OrderBody<'_>> = orders.iter().map(OrderBody::from).collect();
    Ok(json::json_response(200, &body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use serde_json::{Value, json};
    use spin_sdk::http::Method;

    fn order(deps: &Deps<TestStore>, user: &str, ticket: &str, at: u64) -> String {
        let deps = Deps {
            store: &deps.store,
            jwt_secret: SECRET.to_owned(),
            now: at,
        };
        let req = request(
            Method::Post,
            "/api/orders",
            Some(user),
            Some(json!({"ticketId": ticket})),
        );
        let response = crate::routes::create::handle(&req, &deps, lock()).unwrap();
        body_json(&response)["id"].as_str().unwrap().to_owned()
    }

    fn list(deps: &Deps<TestStore>, user: &str) -> Value {
        let response =
            handle(&request(Method::Get, "/api/orders", Some(user), None), deps).unwrap();
        assert_eq!(*response.status(), 200);
        body_json(&response)
    }

    #[test]
    fn lists_the_callers_orders_oldest_first() {
        let deps = deps();
        for ticket in ["t1", "t2", "t3"] {
            put_ticket(&deps.store, ticket, 500);
        }
        let second = order(&deps, "me", "t2", NOW + 5);
        order(&deps, "someone", "t3", NOW + 6);
        let first = order(&deps, "me", "t1", NOW);

        let body = list(&deps, "me");
        let ids: Vec<&str> = body
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [first.as_str(), second.as_str()]);
        assert_eq!(
            body[0]["ticket"],
            json!({"id": "t1", "title": "Show t1", "price": 5.0, "priceCents": 500, "version": 0})
        );
        assert_eq!(body[0]["status"], "created");
        assert_eq!(body[0]["userId"], "me");
    }

    #[test]
    fn the_embedded_ticket_follows_the_replica() {
        let deps = deps();
        put_ticket(&deps.store, "t1", 500);
        let id = order(&deps, "me", "t1", NOW);
        deps.store
            .replicate_ticket(updated("t1", 1, Some(&id)).into())
            .unwrap();
        let body = list(&deps, "me");
        assert_eq!(body[0]["ticket"]["version"], 1);
        assert_eq!(body[0]["ticket"]["title"], "Show t1 v1");
    }

    #[test]
    fn no_orders_is_an_empty_list() {
        assert_eq!(list(&deps(), "me"), json!([]));
    }

    #[test]
    fn requires_a_session() {
        assert_error(
            handle(&request(Method::Get, "/api/orders", None, None), &deps()),
            401,
            json!([{"message": "Not authorized"}]),
        );
    }
}
