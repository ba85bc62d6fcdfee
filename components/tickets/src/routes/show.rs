//! GET /api/tickets/:id → 200 with the ticket (reserved or not, with `orderId` while an
//! order holds it), or 404 for an unknown or malformed id.

use common::ApiError;
use common::sqlite::Database;
use spin_sdk::http::Response;

use super::{Deps, is_ticket_id, ticket_response};

/// Shows one ticket.
pub fn handle(id: &str, deps: &Deps<impl Database>) -> Result<Response, ApiError> {
    if !is_ticket_id(id) {
        return Err(ApiError::NotFound);
    }
    let ticket = deps.tickets.find(id)?.ok_or(ApiError::NotFound)?;
    Ok(ticket_response(200, &ticket))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::testing::*;
    use serde_json::json;

    #[test]
    fn shows_a_free_ticket_without_order_id() {
        let deps = deps();
        let created = create_ticket(&deps, USER, "Concert", "10.99");
        let id = created["id"].as_str().unwrap();
        let response = handle(id, &deps).unwrap();
        assert_eq!(*response.status(), 200);
        assert_eq!(body_json(&response), created);
        assert!(body_json(&response).get("orderId").is_none());
    }

    #[test]
    fn shows_the_holding_order_of_a_reserved_ticket() {
        let deps = deps();
        let id = create_ticket(&deps, USER, "Concert", "10.99")["id"]
            .as_str()
            .unwrap()
            .to_owned();
        reserve(&deps, &id, ORDER);
        let body = body_json(&handle(&id, &deps).unwrap());
        assert_eq!(body["orderId"], json!(ORDER));
        assert_eq!(body["version"], json!(1));
    }

    #[test]
    fn unknown_and_malformed_ids_are_404s() {
        let deps = deps();
        for id in [
            "9b2f6c1e-1d2a-4b3c-8d4e-5f6a7b8c9d0e",
            "not-an-id",
            "",
            "1; DROP TABLE tickets",
        ] {
            assert_error(handle(id, &deps), 404, json!([{"message": "Not Found"}]));
        }
    }
}
