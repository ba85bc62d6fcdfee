//! GET /api/tickets → 200 with an array of the tickets no order holds, newest first.
//!
//! Paginated: `?limit=` 1–100 (default 50) and `?cursor=`. The body stays a plain JSON
//! array, as in the original app; when there may be more tickets, the response carries
//! the opaque cursor of the next page in the `x-next-cursor` header. An empty parameter
//! counts as absent; any other bad value is a 400 naming the parameter.

use common::sqlite::Database;
use common::{ApiError, FieldError, json};
use spin_sdk::http::{Request, Response};

use super::{Deps, TicketBody};
use crate::store::Cursor;

/// Page size when `limit` is absent.
pub const DEFAULT_LIMIT: usize = 50;
/// Largest page.
pub const MAX_LIMIT: usize = 100;
/// Response header with the next page's cursor.
pub const NEXT_CURSOR_HEADER: &str = "x-next-cursor";

const LIMIT_MESSAGE: &str = "Limit must be a whole number between 1 and 100";
const CURSOR_MESSAGE: &str = "Cursor is invalid";

/// One page of available tickets.
pub fn handle(req: &Request, deps: &Deps<impl Database>) -> Result<Response, ApiError> {
    let (limit, cursor) = parse_query(req.query())?;
    let page = deps.tickets.available(limit, cursor)?;
    let body: Vec<TicketBody<'_>> = page.tickets.iter().map(TicketBody::from).collect();
    let mut response = json::json_response(200, &body);
    if let Some(next) = page.next {
        response.set_header(NEXT_CURSOR_HEADER, next.to_string());
    }
    Ok(response)
}

/// `limit` and `cursor` from the query string (the first of repeated parameters).
fn parse_query(query: &str) -> Result<(usize, Option<Cursor>), ApiError> {
    let mut limit = None;
    let mut cursor = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match name.as_ref() {
            "limit" => &mut limit,
            "cursor" => &mut cursor,
            _ => continue,
        };
        if slot.is_none() && !value.is_empty() {
            *slot = Some(value.into_owned());
        }
    }

    let limit = match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n) && raw.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| FieldError::new("limit", LIMIT_MESSAGE)),
    };
    let cursor = match cursor {
        None => Ok(None),
        Some(raw) => Cursor::parse(&raw)
            .map(Some)
            .ok_or_else(|| FieldError::new("cursor", CURSOR_MESSAGE)),
    };
    match (limit, cursor) {
        (Ok(limit), Ok(cursor)) => Ok((limit, cursor)),
        (limit, cursor) => Err(ApiError::Validation(
            [limit.err(), cursor.err()].into_iter().flatten().collect(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::testing::*;
    use serde_json::{Value, json};

    fn list(deps: &TestDeps, query: &str) -> (Vec<Value>, Option<String>) {
        let response = handle(&get(&format!("/api/tickets{query}")), deps).unwrap();
        assert_eq!(*response.status(), 200);
        let next = response
            .header(NEXT_CURSOR_HEADER)
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let Value::Array(tickets) = body_json(&response) else {
            panic!("not an array");
        };
        (tickets, next)
    }

    fn titles(tickets: &[Value]) -> Vec<&str> {
        tickets
            .iter()
            .map(|t| t["title"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn lists_free_tickets_newest_first() {
        let deps = deps();
        for title in ["A", "B", "C"] {
            create_ticket(&deps, USER, title, "1");
        }
        let reserved = create_ticket(&deps, OTHER, "Reserved", "2");
        reserve(&deps, reserved["id"].as_str().unwrap(), ORDER);

        let (tickets, next) = list(&deps, "");
        assert_eq!(titles(&tickets), ["C", "B", "A"]);
        assert_eq!(next, None);
        assert_eq!(
            tickets[0].as_object().unwrap().keys().collect::<Vec<_>>(),
            ["id", "price", "priceCents", "title", "userId", "version"]
        );
    }

    #[test]
    fn an_empty_list_is_an_empty_array() {
        assert_eq!(list(&deps(), ""), (vec![], None));
    }

    #[test]
    fn pages_follow_the_cursor() {
        let deps = deps();
        for title in ["A", "B", "C", "D", "E"] {
            create_ticket(&deps, USER, title, "1");
        }
        let (page, next) = list(&deps, "?limit=2");
        assert_eq!(titles(&page), ["E", "D"]);
        let (page, next) = list(&deps, &format!("?limit=2&cursor={}", next.unwrap()));
        assert_eq!(titles(&page), ["C", "B"]);
        let (page, next) = list(&deps, &format!("?cursor={}&limit=2", next.unwrap()));
        assert_eq!(titles(&page), ["A"]);
        assert_eq!(next, None);
    }

    #[test]
    fn the_default_page_has_50_tickets() {
        let deps = deps();
        for i in 0..51 {
            create_ticket(&deps, USER, &format!("T{i}"), "1");
        }
        let (page, next) = list(&deps, "");
        assert_eq!(page.len(), 50);
        assert_eq!(titles(&page)[0], "T50");
        let (rest, _) = list(&deps, &format!("?cursor={}", next.unwrap()));
        assert_eq!(titles(&rest), ["T0"]);
        assert_eq!(
            list(&deps, "?limit=100&limit=1&other=x&cursor=").0.len(),
            51
        );
    }

    #[test]
    fn bad_parameters_are_400s_naming_them() {
        let deps = deps();
        for query in [
            "?limit=0",
            "?limit=101",
            "?limit=abc",
            "?limit=-1",
            "?limit=+5",
            "?limit=1.5",
        ] {
            assert_error(
                handle(&get(&format!("/api/tickets{query}")), &deps),
                400,
                json!([{"message": LIMIT_MESSAGE, "field": "limit"}]),
            );
        }
        assert_error(
            handle(&get("/api/tickets?limit=1000&cursor=xyz"), &deps),
            400,
            json!([
                {"message": LIMIT_MESSAGE, "field": "limit"},
                {"message": "Cursor is invalid", "field": "cursor"},
            ]),
        );
    }
}
