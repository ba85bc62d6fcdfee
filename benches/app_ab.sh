#!/usr/bin/env bash
# The marketplace's read endpoints served by several host builds side by side, on the same
# seeded data, in alternating rounds (machine drift hits every build alike): the way to
# see what a host change does to the services.
#   bash benches/app_ab.sh before=/tmp/tessera-old after=target/release/tessera
# Each argument is LABEL=BINARY, or LABEL=BINARY@MANIFEST to serve another build of the
# components (a copy of spin.toml whose sources point at it). The first one seeds the app
# (TICKETS, ORDERS); the others serve the same sqlite files with --no-dev-services
# (readers share them safely).
# Knobs: ROUNDS (3), DURATION (wrk per round, 5s), CONNS ("1 32"), TICKETS (200),
# ORDERS (20), MANIFEST (the app's spin.toml), PATHS (the endpoints; default the ticket
# list, one ticket and the buyer's orders). Prints, per endpoint and connection count,
# each build's median requests/s and its rounds.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-5s}"
CONNS="${CONNS:-1 32}"
MANIFEST="${MANIFEST:-$ROOT/spin.toml}"
unset RUST_BACKTRACE

source "$ROOT/benches/lib.sh"
start_redis

LABELS=()
declare -A URL
for spec in "$@"; do
  label="${spec%%=*}"
  extra=()
  [ "${#LABELS[@]}" -gt 0 ] && extra=(--no-dev-services)
  binary="${spec#*=}"
  manifest="$MANIFEST"
  if [[ "$binary" == *@* ]]; then manifest="${binary#*@}"; binary="${binary%%@*}"; fi
  MANIFEST="$manifest" up_app "$label" "$binary" "$STATE/app" "${extra[@]}"
  URL[$label]="$(url "$label")"
  if [ "${#LABELS[@]}" -eq 0 ]; then
    bash "$ROOT/benches/seed.sh" "${URL[$label]}" "$STATE" "${TICKETS:-200}" "${ORDERS:-20}" >/dev/null
  fi
  LABELS+=("$label")
done
BUYER="$(cat "$STATE/buyer.session")"
TICKET="$(cat "$STATE/ticket.id")"

# PATHS: the endpoints, space-separated (TICKET stands for a seeded ticket's id).
read -r -a ENDPOINTS <<<"${PATHS:-/api/tickets?limit=20 /api/tickets/TICKET /api/orders}"
for path in "${ENDPOINTS[@]}"; do
  path="${path//TICKET/$TICKET}"
  for conns in $CONNS; do
    declare -A RATES=()
    for label in "${LABELS[@]}"; do RATES[$label]=""; done
    for _ in $(seq 1 "$ROUNDS"); do
      for label in "${LABELS[@]}"; do
        RATES[$label]+="$(rate "$conns" "${URL[$label]}$path" -H "Cookie: session=$BUYER") "
      done
    done
    for label in "${LABELS[@]}"; do
      echo "GET $path, $conns connections, $label: median $(median "${RATES[$label]}") req/s (rounds: ${RATES[$label]% })"
    done
  done
done
