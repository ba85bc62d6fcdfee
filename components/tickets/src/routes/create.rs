//! POST /api/tickets (signed in) `{title, price}` → 201 with the ticket; emits
//! `ticket:created`.

use common::ApiError;
use common::sqlite::Database;
use spin_sdk::http::{Request, Response};

use super::{Deps, parse_input, ticket_response};
use crate::domain::Ticket;

/// Lists a new ticket for the signed-in user.
pub fn handle(req: &Request, deps: &Deps<impl Database>) -> Result<Response, ApiError> {
    let seller = deps.signed_in(req)?;
    let (title, price) = parse_input(req.body())?;
    let ticket = Ticket::new(uuid::Uuid::new_v4().to_string(), title, price, &seller.id);
    deps.tickets.insert(&ticket, deps.now)?;
    Ok(ticket_response(201, &ticket))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::testing::*;
    use common::events::{Event, TicketCreated};
    use common::outbox::testing::pending;
    use serde_json::json;

    #[test]
    fn lists_a_ticket_and_announces_it() {
        let deps = deps();
        let response = handle(
            &post(json!({"title": "  Concert ", "price": 10.99}), Some(USER)),
            &deps,
        )
        .unwrap();
        assert_eq!(*response.status(), 201);
        let body = body_json(&response);
        let id = body["id"].as_str().unwrap().to_owned();
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
        assert_eq!(
            body,
            json!({"id": id, "title": "Concert", "price": 10.99, "priceCents": 1099,
                   "userId": USER, "version": 0})
        );

        assert_eq!(deps.tickets.find(&id).unwrap().unwrap().price.cents(), 1099);
        assert_eq!(
            pending(deps.tickets.db()).unwrap(),
            vec![Event::TicketCreated(TicketCreated {
                id,
                version: 0,
                title: "Concert".into(),
                price_cents: 1099,
                user_id: USER.into(),
            })]
        );
    }

    #[test]
    fn whole_prices_are_integers() {
        let response = handle(
            &post(json!({"title": "T", "price": 20}), Some(USER)),
            &deps(),
        );
        let body = body_json(&response.unwrap());
        assert_eq!(
            (body["price"].clone(), body["priceCents"].clone()),
            (json!(20), json!(2000))
        );
        assert_eq!(body.to_string().matches("20.0").count(), 0);
    }

    #[test]
    fn requires_a_session_before_looking_at_the_body() {
        for cookie in [None, Some("session=garbage")] {
            let mut req = post_raw(b"not json", None);
            if let Some(cookie) = cookie {
                req.set_header("cookie", cookie);
            }
            assert_error(
                handle(&req, &deps()),
                401,
                json!([{"message": "Not authorized"}]),
            );
        }
    }

    #[test]
    fn reports_every_failed_rule() {
        for body in [
            json!({}),
            json!({"title": "   ", "price": 0}),
            json!({"title": 5, "price": "10"}),
            json!({"title": null, "price": null}),
            json!({"title": "x".repeat(121), "price": -1}),
            json!({"title": ["T"], "price": {"amount": 1}}),
        ] {
            assert_error(
                handle(&post(body.clone(), Some(USER)), &deps()),
                400,
                json!([
                    {"message": "Title is required", "field": "title"},
                    {"message": "Price must be greater than 0", "field": "price"},
                ]),
            );
        }
    }

    #[test]
    fn prices_must_be_whole_cents_up_to_a_million() {
        for price in ["10.999", "0.001", "1000000.01", "1e7", "true", "[]"] {
            let body = format!(r#"{{"title": "T", "price": {price}}}"#);
            assert_error(
                handle(&post_raw(body.as_bytes(), Some(USER)), &deps()),
                400,
                json!([{"message": "Price must be greater than 0", "field": "price"}]),
            );
        }
        for (price, cents) in [
            ("1000000", 100_000_000),
            ("0.01", 1),
            ("10.990", 1099),
            ("1.5e1", 1500),
        ] {
            let body = format!(r#"{{"title": "T", "price": {price}}}"#);
            let response = handle(&post_raw(body.as_bytes(), Some(USER)), &deps()).unwrap();
            assert_eq!(body_json(&response)["priceCents"], json!(cents), "{price}");
        }
    }

    #[test]
    fn bad_json_is_a_bad_request() {
        for body in [&b"{\"title\":"[..], br#"{"title": "T", "price": NaN}"#, b""] {
            assert_error(
                handle(&post_raw(body, Some(USER)), &deps()),
                400,
                json!([{"message": "Request body must be valid JSON"}]),
            );
        }
    }

    #[test]
    fn oversized_bodies_are_refused() {
        let padding = "x".repeat(common::json::MAX_BODY_BYTES);
        let body = json!({"title": "T", "price": 1, "padding": padding});
        assert_eq!(
            handle(&post(body, Some(USER)), &deps())
                .unwrap_err()
                .status(),
            413
        );
    }

    #[test]
    fn store_failures_are_500s_without_details() {
        let deps = deps();
        deps.tickets
            .db()
            .fail_statements_containing("INSERT INTO tickets");
        assert_error(
            handle(&post(json!({"title": "T", "price": 1}), Some(USER)), &deps),
            500,
            json!([{"message": "Something went wrong"}]),
        );
        assert_eq!(pending(deps.tickets.db()).unwrap(), vec![]);
    }
}
