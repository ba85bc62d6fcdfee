"""activity: each user's activity feed, in Python (componentize-py 0.17.2 + spin-sdk 3.4.1).

- Redis (`[[trigger.redis]]` in spin.toml): ticket, order, expiration and payment events.
  Tickets teach titles, prices and sellers; `order:created` teaches the buyer; every other
  order or payment event is a *fact* about an order. Facts are stored once per (order,
  kind), so duplicates change nothing, and the feed entries are derived from what is known
  about an order (`materialize`), so facts that arrive before the order or its ticket wait
  for them. Ticket and order rows apply only newer versions.
- HTTP `GET /api/activity`: the signed-in user's feed, newest first; `?limit=` 1-100
  (default 50) and `?cursor=`, the next page's cursor in the `x-next-cursor` header, as
  `GET /api/tickets` does.

The event records are generated from wit/events.wit at build time (`tessera_events`, see
build.sh) and decoded generically from the CloudEvents envelope (`events.py`).
"""

import json
from urllib.parse import parse_qsl, urlparse

from spin_sdk import http, variables
from spin_sdk.http import Request, Response
from spin_sdk.wit import exports

import events
import session
import store
from tessera_events.imports import types as ev

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
NEXT_CURSOR_HEADER = "x-next-cursor"


def json_response(status, value, headers=None):
    head = {"content-type": "application/json"}
    head.update(headers or {})
    return Response(status, head, json.dumps(value, separators=(",", ":")).encode())


def error(status, message, field=None):
    entry = {"message": message}
    if field is not None:
        entry["field"] = field
    return json_response(status, {"errors": [entry]})


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        try:
            return route(request)
        except Exception as e:  # an unexpected failure: details in the log only
            print(f"activity: request failed: {e!r}")
            return error(500, "Something went wrong")


def route(request: Request):
    path = request.headers.get("spin-path-info", "")
    if request.method != "GET" or path not in ("", "/"):
        return error(404, "Not Found")
    user = session.current_user(request.headers.get("cookie"), variables.get("jwt_secret"))
    if user is None:
        return error(401, "Not authorized")
    limit, cursor, problems = parse_query(urlparse(request.uri).query)
    if problems:
        return json_response(400, {"errors": problems})
    entries, next_cursor = store.Store.open().feed(user["id"], limit, cursor)
    headers = {NEXT_CURSOR_HEADER: str(next_cursor)} if next_cursor is not None else {}
    return json_response(200, entries, headers)


def parse_query(query):
    """`limit` and `cursor` (the first of repeated parameters; empty counts as absent)."""
    raw = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in ("limit", "cursor") and name not in raw and value != "":
            raw[name] = value
    problems = []
    limit = DEFAULT_LIMIT
    if "limit" in raw:
        text = raw["limit"]
        if text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_LIMIT:
            limit = int(text)
        else:
            problems.append({"message": "Limit must be a whole number between 1 and 100", "field": "limit"})
    cursor = None
    if "cursor" in raw:
        text = raw["cursor"]
        if text.isascii() and text.isdigit() and len(text) <= 18:
            cursor = int(text)
        else:
            problems.append({"message": "Cursor is invalid", "field": "cursor"})
    return limit, cursor, problems


class InboundRedis(exports.InboundRedis):
    def handle_message(self, message: bytes) -> None:
        event = events.decode(message)
        if event is None:
            return
        kind, time, data = event
        db = store.Store.open()
        if isinstance(data, ev.TicketCreated):
            db.ticket(data.id, data.version, data.title, data.price_cents, data.user_id)
        elif isinstance(data, ev.TicketUpdated):
            db.ticket(data.id, data.version, data.title, data.price_cents, data.user_id)
        elif isinstance(data, ev.OrderCreated):
            db.order_created(data, time)
        elif isinstance(data, ev.OrderCancelled):
            db.order_fact(data.id, data.version, "cancelled", time, data.ticket.id)
        elif isinstance(data, ev.OrderCompleted):
            db.order_fact(data.id, data.version, "completed", time, data.ticket.id)
        elif isinstance(data, ev.ExpirationComplete):
            db.fact(data.order_id, "expired", time)
        elif isinstance(data, ev.PaymentCreated):
            db.fact(data.order_id, "paid", time)
        elif isinstance(data, ev.PaymentRefunded):
            db.fact(data.order_id, "refunded", time)
