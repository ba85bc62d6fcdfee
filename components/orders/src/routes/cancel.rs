//! DELETE /api/orders/:id → 204, the order cancelled (emits `order:cancelled`).

use anyhow::anyhow;
use common::ApiError;
use spin_sdk::http::{Request, Response};

use super::{Deps, owned_order};
use crate::domain::{Refusal, Trigger};
use crate::store::OrderStore;
use crate::update::{Applied, apply};

/// Message when the order is already paid.
pub const CANNOT_CANCEL_COMPLETED: &str = "Cannot cancel a completed order";

/// Cancels one of the caller's orders. Cancelling a cancelled order is a 204 that
/// changes nothing and emits nothing.
pub fn handle(req: &Request, id: &str, deps: &Deps<impl OrderStore>) -> Result<Response, ApiError> {
    let user = deps.user(req)?;
    let order = owned_order(&deps.store, id, &user)?;
    match apply(&deps.store, order, Trigger::BuyerCancels, deps.now)? {
        Applied::Changed(_) | Applied::Unchanged(_) => Ok(Response::new(204, ())),
        Applied::Refused(_, Refusal::CancelCompleted) => {
            Err(ApiError::BadRequest(CANNOT_CANCEL_COMPLETED.to_owned()))
        }
        Applied::Refused(order, refusal) => Err(ApiError::Unexpected(anyhow!(
            "Cancelling order {} was refused as {refusal:?}",
            order.id
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{OrderId, OrderStatus};
    use crate::messages;
    use crate::testing::*;
    use common::events::{Event, PaymentCreated};
    use serde_json::json;
    use spin_sdk::http::Method;

    fn placed(deps: &Deps<TestStore>) -> OrderId {
        put_ticket(&deps.store, "t1", 2500);
        let req = request(
            Method::Post,
            "/api/orders",
            Some("owner"),
            Some(json!({"ticketId": "t1"})),
        );
        let response = crate::routes::create::handle(&req, deps, lock()).unwrap();
        OrderId::parse(body_json(&response)["id"].as_str().unwrap()).unwrap()
    }

    fn delete(deps: &Deps<TestStore>, id: &str, user: Option<&str>) -> Result<Response, ApiError> {
        handle(&request(Method::Delete, "/", user, None), id, deps)
    }

    /// The events queued after the `order:created` of [`placed`].
    fn events_after_placing(deps: &Deps<TestStore>) -> Vec<Event> {
        outbox(&deps.store).split_off(1)
    }

    #[test]
    fn cancels_and_announces_it() {
        let deps = deps();
        let id = placed(&deps);

        let response = delete(&deps, id.as_ref(), Some("owner")).unwrap();

        assert_eq!(*response.status(), 204);
        assert!(response.body().is_empty());
        let order = deps.store.order(&id).unwrap().unwrap();
        assert_eq!((order.status, order.version), (OrderStatus::Cancelled, 1));
        let Event::OrderCancelled(event) = single(events_after_placing(&deps)) else {
            panic!("expected one order:cancelled");
        };
        assert_eq!((event.id.as_str(), event.version), (id.as_ref(), 1));
        assert_eq!(event.ticket.id, "t1");
    }

    #[test]
    fn cancelling_again_changes_nothing() {
        let deps = deps();
        let id = placed(&deps);
        delete(&deps, id.as_ref(), Some("owner")).unwrap();

        let response = delete(&deps, id.as_ref(), Some("owner")).unwrap();

        assert_eq!(*response.status(), 204);
        let order = deps.store.order(&id).unwrap().unwrap();
        assert_eq!((order.status, order.version), (OrderStatus::Cancelled, 1));
        assert_eq!(events_after_placing(&deps).len(), 1, "no second event");
    }

    #[test]
    fn a_completed_order_cannot_be_cancelled() {
        let deps = deps();
        let id = placed(&deps);
        let payment = PaymentCreated {
            id: "p1".into(),
            order_id: id.to_string(),
            stripe_id: "pi_1".into(),
        };
        messages::handle(&deps.store, &message(payment), NOW).unwrap();

        assert_error(
            delete(&deps, id.as_ref(), Some("owner")),
            400,
            json!([{"message": "Cannot cancel a completed order"}]),
        );
        let order = deps.store.order(&id).unwrap().unwrap();
        assert_eq!((order.status, order.version), (OrderStatus::Complete, 1));
    }

    #[test]
    fn unknown_malformed_and_foreign_orders() {
        let deps = deps();
        let id = placed(&deps);
        assert_error(
            delete(&deps, "6f1c2d3e-0000-4000-8000-000000000000", Some("owner")),
            404,
            json!([{"message": "Not Found"}]),
        );
        assert_error(
            delete(&deps, "42", Some("owner")),
            404,
            json!([{"message": "Not Found"}]),
        );
        assert_error(
            delete(&deps, id.as_ref(), Some("intruder")),
            401,
            json!([{"message": "Not authorized"}]),
        );
        assert_error(
            delete(&deps, id.as_ref(), None),
            401,
            json!([{"message": "Not authorized"}]),
        );
        assert_eq!(
            deps.store.order(&id).unwrap().unwrap().status,
            OrderStatus::Created
        );
        assert!(events_after_placing(&deps).is_empty());
    }

    #[test]
    fn a_failed_write_is_a_500_and_changes_nothing() {
        let deps = deps();
        let id = placed(&deps);
        deps.store
            .db()
            .fail_statements_containing("INSERT INTO outbox");
        assert_error(
            delete(&deps, id.as_ref(), Some("owner")),
            500,
            json!([{"message": "Something went wrong"}]),
        );
        deps.store.db().heal();
        assert_eq!(
            deps.store.order(&id).unwrap().unwrap().status,
            OrderStatus::Created
        );
    }
}
