#!/usr/bin/env bash
# Seeds a running marketplace through its API for the benchmarks, and waits until the
# events have reached every service.
#   bash benches/seed.sh APP_URL OUT_DIR TICKETS ORDERS
# A seller lists TICKETS tickets with two-word titles; a buyer orders the first ORDERS of
# them (so each has ORDERS activity entries). Writes OUT_DIR/seller.session,
# OUT_DIR/buyer.session (the session cookies' values) and OUT_DIR/ticket.id (an unordered
# ticket).
set -euo pipefail
APP="$1" OUT="$2" TICKETS="$3" ORDERS="$4"

sign_up() {
  curl -fsS -c "$OUT/$1.cookies" -H 'content-type: application/json' \
    -d "{\"email\":\"$1@example.com\",\"password\":\"password\"}" "$APP/api/users/signup" >/dev/null
  awk '$6 == "session" {print $7}' "$OUT/$1.cookies" >"$OUT/$1.session"
}
sign_up seller
sign_up buyer

WORDS=(concert opera jazz festival theatre ballet comedy symphony rock gala)
IDS=()
for i in $(seq 1 "$TICKETS"); do
  w1="${WORDS[$(( i % 10 ))]}"; w2="${WORDS[$(( (i / 10) % 10 ))]}"
  id="$(curl -fsS -b "$OUT/seller.cookies" -H 'content-type: application/json' \
    -d "{\"title\":\"${w1^} ${w2} night $i\",\"price\":$(( i % 90 + 10 ))}" "$APP/api/tickets" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
  IDS+=("$id")
done
echo "${IDS[$(( TICKETS - 1 ))]}" >"$OUT/ticket.id"

# Each order waits (bounded) until orders has heard of its ticket.
for i in $(seq 0 $(( ORDERS - 1 ))); do
  for attempt in $(seq 1 100); do
    code="$(curl -sS -o /dev/null -w '%{http_code}' -b "$OUT/buyer.cookies" \
      -H 'content-type: application/json' -d "{\"ticketId\":\"${IDS[$i]}\"}" "$APP/api/orders")"
    [ "$code" = 201 ] && break
    [ "$attempt" = 100 ] && { echo "seed: ordering ticket ${IDS[$i]} answered $code" >&2; exit 1; }
    sleep 0.05
  done
done

# The events: search finds the last ticket, the buyer's feed has every order.
for attempt in $(seq 1 200); do
  found="$(curl -fsS "$APP/api/search?q=night%20$TICKETS" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
  seen="$(curl -fsS -b "$OUT/buyer.cookies" "$APP/api/activity?limit=100" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
  [ "$found" -ge 1 ] && [ "$seen" -ge "$ORDERS" ] && exit 0
  sleep 0.1
done
echo "seed: search or activity never caught up (found $found, seen $seen)" >&2
exit 1
