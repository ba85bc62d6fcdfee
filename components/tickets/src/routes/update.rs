//! PUT /api/tickets/:id (signed in) `{title, price}` → 200 with version + 1; emits
//! `ticket:updated`.
//!
//! Checks, in the contract's order: 401 not signed in → 400 validation → 404 unknown
//! or malformed id → 400 `Cannot edit a reserved ticket` → 401 not the seller.

use common::ApiError;
use common::sqlite::Database;
use spin_sdk::http::{Request, Response};

use super::{Deps, is_ticket_id, parse_input, ticket_response};
use crate::domain::EditRefusal;

/// Message when an order holds the ticket.
pub const RESERVED_MESSAGE: &str = "Cannot edit a reserved ticket";

/// Edits the seller's own, free ticket. The read, the checks and the write happen in
/// one transaction, so an order cannot reserve the ticket in between.
pub fn handle(req: &Request, id: &str, deps: &Deps<impl Database>) -> Result<Response, ApiError> {
    let editor = deps.signed_in(req)?;
    let (title, price) = parse_input(req.body())?;
    if !is_ticket_id(id) {
        return Err(ApiError::NotFound);
    }
    let edited = deps
        .tickets
        .update(id, deps.now, |ticket| {
            ticket.edit(&editor.id, title, price).map_err(refused)
        })?
        .ok_or(ApiError::NotFound)?;
    Ok(ticket_response(200, &edited))
}

fn refused(refusal: EditRefusal) -> ApiError {
    match refusal {
        EditRefusal::Reserved => ApiError::BadRequest(RESERVED_MESSAGE.to_owned()),
        EditRefusal::NotOwner => ApiError::NotAuthorized,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::testing::*;
    use common::events::Event;
    use common::outbox::testing::pending;
    use serde_json::{Value, json};

    const UNKNOWN: &str = "9b2f6c1e-1d2a-4b3c-8d4e-5f6a7b8c9d0e";

    fn listed(deps: &TestDeps) -> String {
        let created = create_ticket(deps, USER, "Concert", "10.99");
        deps.tickets.db().query("DELETE FROM outbox", &[]).unwrap();
        created["id"].as_str().unwrap().to_owned()
    }

    fn edit(
        deps: &TestDeps,
        id: &str,
        body: Value,
        user: Option<&str>,
    ) -> Result<Response, ApiError> {
        handle(&put(id, body, user), id, deps)
    }

    #[test]
    fn the_seller_edits_and_the_change_is_announced() {
        let deps = deps();
        let id = listed(&deps);
        let response = edit(
            &deps,
            &id,
            json!({"title": " Opera ", "price": 50}),
            Some(USER),
        )
        .unwrap();
        assert_eq!(*response.status(), 200);
        assert_eq!(
            body_json(&response),
            json!({"id": id, "title": "Opera", "price": 50, "priceCents": 5000,
                   "userId": USER, "version": 1})
        );
        let events = pending(deps.tickets.db()).unwrap();
        let [Event::TicketUpdated(updated)] = events.as_slice() else {
            panic!("{events:?}");
        };
        assert_eq!((updated.version, updated.price_cents), (1, 5000));
        assert_eq!(updated.order_id, None);

        let again = edit(
            &deps,
            &id,
            json!({"title": "Opera", "price": 60}),
            Some(USER),
        )
        .unwrap();
        assert_eq!(body_json(&again)["version"], json!(2));
    }

    #[test]
    fn not_signed_in_comes_first() {
        let deps = deps();
        let id = listed(&deps);
        for target in [id.as_str(), UNKNOWN, "bad-id"] {
            assert_error(
                edit(&deps, target, json!({"title": ""}), None),
                401,
                json!([{"message": "Not authorized"}]),
            );
        }
    }

    #[test]
    fn validation_comes_before_the_lookup() {
        let deps = deps();
        for target in [UNKNOWN, "bad-id"] {
            assert_error(
                edit(
                    &deps,
                    target,
                    json!({"title": "", "price": 10.999}),
                    Some(USER),
                ),
                400,
                json!([
                    {"message": "Title is required", "field": "title"},
                    {"message": "Price must be greater than 0", "field": "price"},
                ]),
            );
        }
    }

    #[test]
    fn unknown_and_malformed_ids_are_404s() {
        let deps = deps();
        for target in [UNKNOWN, "bad-id"] {
            assert_error(
                edit(&deps, target, json!({"title": "T", "price": 1}), Some(USER)),
                404,
                json!([{"message": "Not Found"}]),
            );
        }
    }

    #[test]
    fn a_reserved_ticket_cannot_be_edited_even_by_others() {
        let deps = deps();
        let id = listed(&deps);
        reserve(&deps, &id, ORDER);
        for user in [USER, OTHER] {
            assert_error(
                edit(&deps, &id, json!({"title": "T", "price": 1}), Some(user)),
                400,
                json!([{"message": "Cannot edit a reserved ticket"}]),
            );
        }
        let stored = deps.tickets.find(&id).unwrap().unwrap();
        assert_eq!((stored.title.as_ref(), stored.version), ("Concert", 1));
    }

    #[test]
    fn only_the_seller_edits() {
        let deps = deps();
        let id = listed(&deps);
        assert_error(
            edit(
                &deps,
                &id,
                json!({"title": "Mine now", "price": 1}),
                Some(OTHER),
            ),
            401,
            json!([{"message": "Not authorized"}]),
        );
        assert_eq!(deps.tickets.find(&id).unwrap().unwrap().version, 0);
        assert_eq!(pending(deps.tickets.db()).unwrap(), vec![]);
    }
}
