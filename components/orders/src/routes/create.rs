//! POST /api/orders `{ticketId}` → 201 the new order, holding the ticket until
//! `expiresAt`; emits `order:created`.

use common::{ApiError, json};
use serde::Deserialize;
use serde_json::Value;
use spin_sdk::http::{Request, Response};

use super::{Deps, OrderBody};
use crate::domain::{LockWindow, Order, OrderId, Ticket};
use crate::store::{InsertError, OrderStore};

/// Message when `ticketId` is missing, empty or not a string.
pub const TICKET_ID_REQUIRED: &str = "TicketId must be provided";

/// Message when another order holds the ticket.
pub const TICKET_RESERVED: &str = "Ticket is already reserved";

/// The body; the id stays raw so a missing or mistyped one gets the field's message.
#[derive(Deserialize)]
struct NewOrder {
    #[serde(default, rename = "ticketId")]
    ticket_id: Option<Value>,
}

impl NewOrder {
    fn ticket_id(&self) -> Result<&str, ApiError> {
        self.ticket_id
            .as_ref()
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| ApiError::field("ticketId", TICKET_ID_REQUIRED))
    }
}

/// Reserves the ticket for the signed-in user for `lock`.
///
/// Checks in order: 401 not signed in → 400 `ticketId` → 404 unknown ticket → 400
/// reserved. Reserving is decided by the store's insert (one holder per ticket, atomic
/// across instances); the replica's `orderId` is checked first as well, so a ticket the
/// tickets service reports as held is refused even before its order is known here.
pub fn handle(
    req: &Request,
    deps: &Deps<impl OrderStore>,
    lock: LockWindow,
) -> Result<Response, ApiError> {
    let user = deps.user(req)?;
    let body: NewOrder = json::parse_body(req.body())?;
    let ticket_id = body.ticket_id()?;

    let ticket = deps.store.ticket(ticket_id)?.ok_or(ApiError::NotFound)?;
    if is_held(&deps.store, &ticket)? {
        return Err(reserved());
    }

    let order = Order::place(&user.id, ticket, lock.expires_at(deps.now));
    match deps.store.insert_order(&order, deps.now) {
        Ok(()) => Ok(json::json_response(201, &OrderBody::from(&order))),
        Err(InsertError::Reserved) => Err(reserved()),
        Err(InsertError::Other(err)) => Err(err.into()),
    }
}

/// Whether the replica says another order holds `ticket` (see [`Ticket::is_held`]).
fn is_held(store: &impl OrderStore, ticket: &Ticket) -> anyhow::Result<bool> {
    let holder_status = match ticket.order_id.as_deref().and_then(OrderId::parse) {
        Some(holder) => store.order(&holder)?.map(|order| order.status),
        None => None,
    };
    Ok(ticket.is_held(holder_status))
}

fn reserved() -> ApiError {
    ApiError::BadRequest(TICKET_RESERVED.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrderStatus;
    use crate::messages;
    use crate::testing::*;
    use common::events::{Event, PaymentCreated};
    use serde_json::json;
    use spin_sdk::http::{IntoResponse, Method};

    fn post(deps: &Deps<TestStore>, user: Option<&str>, body: Value) -> Result<Response, ApiError> {
        handle(
            &request(Method::Post, "/api/orders", user, Some(body)),
            deps,
            lock(),
        )
    }

    fn order_id(response: &Response) -> OrderId {
        OrderId::parse(body_json(response)["id"].as_str().unwrap()).unwrap()
    }

    #[test]
    fn reserves_the_ticket_until_the_lock_expires() {
        let deps = deps();
        put_ticket(&deps.store, "t1", 1099);

        let response = post(&deps, Some("buyer"), json!({"ticketId": "t1"})).unwrap();

        assert_eq!(*response.status(), 201);
        let body = body_json(&response);
        let id = body["id"].as_str().unwrap();
        assert!(OrderId::parse(id).is_some(), "{id}");
        assert_eq!(
            body,
            json!({
                "id": id,
                "userId": "buyer",
                "status": "created",
                "expiresAt": "2027-01-15T08:03:00Z",
                "version": 0,
                "ticket": {
                    "id": "t1",
                    "title": "Show t1",
                    "price": 10.99,
                    "priceCents": 1099,
                    "version": 0,
                },
                "payment": null,
            })
        );
        let stored = deps.store.order(&order_id(&response)).unwrap().unwrap();
        assert_eq!(stored.status, OrderStatus::Created);
        assert_eq!(stored.expires_at.unix_seconds(), NOW + LOCK_SECONDS);
    }

    #[test]
    fn announces_order_created() {
        let deps = deps();
        put_ticket(&deps.store, "t1", 1099);
        let response = post(&deps, Some("buyer"), json!({"ticketId": "t1"})).unwrap();

        let Event::OrderCreated(event) = single(outbox(&deps.store)) else {
            panic!("expected one order:created");
        };
        assert_eq!(event.id, order_id(&response).as_ref());
        assert_eq!(event.version, 0);
        assert_eq!(event.status, OrderStatus::Created);
        assert_eq!(event.user_id, "buyer");
        assert_eq!(event.expires_at, "2027-01-15T08:03:00Z");
        assert_eq!(
            (event.ticket.id.as_str(), event.ticket.price_cents),
            ("t1", 1099)
        );
    }

    #[test]
    fn requires_a_session() {
        let deps = deps();
        put_ticket(&deps.store, "t1", 1099);
        assert_error(
            post(&deps, None, json!({"ticketId": "t1"})),
            401,
            json!([{"message": "Not authorized"}]),
        );
        let mut forged = request(
            Method::Post,
            "/api/orders",
            None,
            Some(json!({"ticketId": "t1"})),
        );
        forged.set_header("cookie", "session=forged.token.value");
        assert_error(
            handle(&forged, &deps, lock()),
            401,
            json!([{"message": "Not authorized"}]),
        );
        assert!(outbox(&deps.store).is_empty());
    }

    #[test]
    fn the_ticket_id_must_be_provided() {
        let deps = deps();
        put_ticket(&deps.store, "t1", 1099);
        for body in [
            json!({}),
            json!({"ticketId": ""}),
            json!({"ticketId": "   "}),
            json!({"ticketId": null}),
            json!({"ticketId": 5}),
            json!({"ticketId": ["t1"]}),
            json!({"ticket_id": "t1"}),
        ] {
            assert_error(
                post(&deps, Some("buyer"), body),
                400,
                json!([{"message": "TicketId must be provided", "field": "ticketId"}]),
            );
        }
    }

    #[test]
    fn bad_json_is_a_bad_request() {
        let deps = deps();
        let mut req = request(Method::Post, "/api/orders", Some("buyer"), None);
        *req.body_mut() = b"{\"ticketId\":".to_vec();
        assert_error(
            handle(&req, &deps, lock()),
            400,
            json!([{"message": "Request body must be valid JSON"}]),
        );
    }

    #[test]
    fn an_unknown_ticket_is_not_found() {
        let deps = deps();
        assert_error(
            post(&deps, Some("buyer"), json!({"ticketId": "nope"})),
            404,
            json!([{"message": "Not Found"}]),
        );
    }

    #[test]
    fn a_held_ticket_is_already_reserved() {
        let deps = deps();
        put_ticket(&deps.store, "t1", 1099);
        post(&deps, Some("first"), json!({"ticketId": "t1"})).unwrap();
        for user in ["second", "first"] {
            assert_error(
                post(&deps, Some(user), json!({"ticketId": "t1"})),
                400,
                json!([{"message": "Ticket is already reserved"}]),
            );
        }
        assert_eq!(outbox(&deps.store).len(), 1, "only the winner is announced");
    }

    #[test]
    fn of_many_racing_reservations_exactly_one_wins() {
        // None of them sees a holder in the replica (the tickets service has not
        // answered yet), so each one reaches the insert, as concurrent requests would;
        // the store's one-holder-per-ticket rule decides.
        let deps = deps();
        put_ticket(&deps.store, "t1", 1099);
        let statuses: Vec<u16> = (0..50)
            .map(|i| {
                let response = post(&deps, Some(&format!("user{i}")), json!({"ticketId": "t1"}));
                *response.into_response().status()
            })
            .collect();
        assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1);
        assert_eq!(statuses.iter().filter(|s| **s == 400).count(), 49);
        assert_eq!(outbox(&deps.store).len(), 1);
    }

    #[test]
    fn a_cancelled_order_frees_the_ticket() {
        let deps = deps();
        put_ticket(&deps.store, "t1", 1099);
        let first = post(&deps, Some("first"), json!({"ticketId": "t1"})).unwrap();
        let id = order_id(&first);
        let cancel = request(Method::Delete, "/", Some("first"), None);
        crate::routes::cancel::handle(&cancel, id.as_ref(), &deps).unwrap();

        let second = post(&deps, Some("second"), json!({"ticketId": "t1"})).unwrap();
        assert_eq!(*second.status(), 201);
    }

    #[test]
    fn a_paid_order_keeps_the_ticket() {
        let deps = deps();
        put_ticket(&deps.store, "t1", 1099);
        let first = post(&deps, Some("first"), json!({"ticketId": "t1"})).unwrap();
        let payment = PaymentCreated {
            id: "p1".into(),
            order_id: order_id(&first).to_string(),
            stripe_id: "pi_1".into(),
        };
        messages::handle(&deps.store, &message(payment), NOW).unwrap();

        assert_error(
            post(&deps, Some("second"), json!({"ticketId": "t1"})),
            400,
            json!([{"message": "Ticket is already reserved"}]),
        );
    }

    #[test]
    fn a_ticket_the_tickets_service_reports_held_is_reserved() {
        let deps = deps();
        put_ticket(&deps.store, "t1", 1099);
        // Held by an order this service has not seen (yet).
        let holder = "0b0b0b0b-0000-4000-8000-000000000000";
        deps.store
            .replicate_ticket(updated("t1", 1, Some(holder)).into())
            .unwrap();
        assert_error(
            post(&deps, Some("buyer"), json!({"ticketId": "t1"})),
            400,
            json!([{"message": "Ticket is already reserved"}]),
        );
    }

    #[test]
    fn a_hold_by_an_order_cancelled_here_does_not_count() {
        let deps = deps();
        put_ticket(&deps.store, "t1", 1099);
        let first = post(&deps, Some("first"), json!({"ticketId": "t1"})).unwrap();
        let id = order_id(&first);
        // The tickets service reserved the ticket for the first order…
        deps.store
            .replicate_ticket(updated("t1", 1, Some(id.as_ref())).into())
            .unwrap();
        // …which then expired here; the release is still on its way.
        let expired = common::events::ExpirationComplete {
            order_id: id.to_string(),
        };
        messages::handle(&deps.store, &message(expired), NOW).unwrap();

        let second = post(&deps, Some("second"), json!({"ticketId": "t1"})).unwrap();
        assert_eq!(*second.status(), 201);
    }

    #[test]
    fn store_failures_are_500s_and_leave_nothing_behind() {
        let deps = deps();
        put_ticket(&deps.store, "t1", 1099);
        deps.store
            .db()
            .fail_statements_containing("INSERT INTO outbox");
        assert_error(
            post(&deps, Some("buyer"), json!({"ticketId": "t1"})),
            500,
            json!([{"message": "Something went wrong"}]),
        );
        deps.store.db().heal();
        assert!(
            deps.store.orders_of("buyer").unwrap().is_empty(),
            "rolled back"
        );
        assert!(outbox(&deps.store).is_empty());

        deps.store.db().fail_statements_containing("FROM tickets");
        assert_error(
            post(&deps, Some("buyer"), json!({"ticketId": "t1"})),
            500,
            json!([{"message": "Something went wrong"}]),
        );
    }
}
