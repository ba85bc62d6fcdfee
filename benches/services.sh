#!/usr/bin/env bash
# The marketplace's read endpoints side by side — Rust (tickets, orders, auth), Python
# (activity) and TypeScript (search) — and the memory of the whole app, on loopback, with wrk.
#   bash benches/services.sh        (after scripts/test.sh or scripts/dev.sh built everything)
# Seeds one app (its own redis-server) with TICKETS tickets and ORDERS orders, then prints
# one markdown table row per endpoint and connection count, and the tessera process's RSS
# (idle after seeding, after the load) beside the same app without activity and search.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
DURATION="${DURATION:-10s}"
TICKETS="${TICKETS:-200}"
ORDERS="${ORDERS:-20}"
command -v wrk >/dev/null || { echo "install wrk: apt-get install -y wrk" >&2; exit 1; }
unset RUST_BACKTRACE # a captured backtrace per request would distort the numbers

STATE="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$STATE"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

REDIS_PORT="$(free_port)"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  --notify-keyspace-events Ex >"$STATE/redis.log" 2>&1 &
PIDS+=($!)

# Starts `tessera up` for MANIFEST in the background; waits until it has subscribed.
start_app() {
  local name="$1" manifest="$2"
  env SPIN_VARIABLE_JWT_SECRET=bench SPIN_VARIABLE_REDIS_ADDRESS="redis://127.0.0.1:$REDIS_PORT" \
    SPIN_VARIABLE_STRIPE_SECRET_KEY=sk_test_bench SPIN_VARIABLE_STRIPE_PUBLISHABLE_KEY=pk_test_bench \
    SPIN_VARIABLE_STRIPE_WEBHOOK_SECRET=whsec_bench \
    SPIN_VARIABLE_ARGON2_MEMORY_KIB=64 SPIN_VARIABLE_ARGON2_ITERATIONS=1 \
    "$TARGET/release/tessera" up -f "$manifest" --runtime-config-file "$ROOT/runtime-config.toml" \
    --listen 127.0.0.1:0 --state-dir "$STATE/$name" >"$STATE/$name.log" 2>&1 &
  PIDS+=($!)
  APP_PID=$!
  for _ in $(seq 1 1200); do
    grep -q "Subscribed to " "$STATE/$name.log" && grep -q "Serving HTTP on" "$STATE/$name.log" && break
    sleep 0.1
  done
  grep -q "Subscribed to " "$STATE/$name.log" || { cat "$STATE/$name.log" >&2; exit 1; }
  APP="$(grep -m1 -o 'http://[0-9.:]*' "$STATE/$name.log")"
}
rss_mib() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

# wrk output → "| scenario | conns | req/s | p50 | p99 |"
measure() {
  local name="$1" conns="$2" url="$3"; shift 3
  local out; out="$(wrk -t"$(( conns < 2 ? 1 : 2 ))" -c"$conns" -d"$DURATION" --latency "$@" "$url")"
  local rps p50 p99
  rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
  p50="$(awk '$1=="50%" {print $2}' <<<"$out")"
  p99="$(awk '$1=="99%" {print $2}' <<<"$out")"
  if grep -q "Non-2xx" <<<"$out"; then echo "$name: non-2xx responses" >&2; fi
  printf '| %s | %s | %s | %s | %s |\n' "$name" "$conns" "$rps" "$p50" "$p99"
}

# The same app without the two components (for the memory comparison).
python3 - "$ROOT/spin.toml" "$STATE/rust-only.toml" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
for component in ("activity", "search"):
    # Drop its section header comment, triggers and [component.x*] tables.
    text = re.sub(r'# --- %s:.*?(?=# --- )' % component, '', text, flags=re.S)
root = sys.argv[1].rsplit('/', 1)[0]
text = text.replace('source = "target/', 'source = "%s/target/' % root)
text = text.replace('source = "client/', 'source = "%s/client/' % root)
open(sys.argv[2], 'w').write(text)
EOF
start_app rust "$STATE/rust-only.toml"
curl -fsS -o /dev/null "$APP/api/tickets"
RUST_RSS="$(rss_mib "$APP_PID")"
kill "$APP_PID"; wait "$APP_PID" 2>/dev/null || true

start_app app "$ROOT/spin.toml"
JAR="$STATE/cookies"
curl -fsS -c "$JAR" -H 'content-type: application/json' \
  -d '{"email":"seller@example.com","password":"password"}' "$APP/api/users/signup" >/dev/null
BUYER_JAR="$STATE/buyer-cookies"
curl -fsS -c "$BUYER_JAR" -H 'content-type: application/json' \
  -d '{"email":"buyer@example.com","password":"password"}' "$APP/api/users/signup" >/dev/null
WORDS=(concert opera jazz festival theatre ballet comedy symphony rock gala)
IDS=()
for i in $(seq 1 "$TICKETS"); do
  w1="${WORDS[$(( i % 10 ))]}"; w2="${WORDS[$(( (i / 10) % 10 ))]}"
  id="$(curl -fsS -b "$JAR" -H 'content-type: application/json' \
    -d "{\"title\":\"${w1^} ${w2} night $i\",\"price\":$(( i % 90 + 10 ))}" "$APP/api/tickets" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
  IDS+=("$id")
done
# Orders: each gives the buyer and the seller an activity entry.
for i in $(seq 0 $(( ORDERS - 1 ))); do
  for _ in $(seq 1 100); do
    code="$(curl -sS -o /dev/null -w '%{http_code}' -b "$BUYER_JAR" -H 'content-type: application/json' \
      -d "{\"ticketId\":\"${IDS[$i]}\"}" "$APP/api/orders")"
    [ "$code" = 201 ] && break
    sleep 0.05
  done
done
# Wait for the events: search finds the last ticket, the buyer sees every order.
for _ in $(seq 1 200); do
  found="$(curl -fsS "$APP/api/search?q=night%20$TICKETS" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
  seen="$(curl -fsS -b "$BUYER_JAR" "$APP/api/activity?limit=100" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
  [ "$found" -ge 1 ] && [ "$seen" -ge "$ORDERS" ] && break
  sleep 0.1
done
IDLE_RSS="$(rss_mib "$APP_PID")"
SELLER="$(awk '$6 == "session" {print $7}' "$JAR")"
BUYER="$(awk '$6 == "session" {print $7}' "$BUYER_JAR")"

echo "| endpoint | connections | requests/s | p50 | p99 |"
echo "|---|---|---|---|---|"
for conns in 1 32; do
  measure "Rust: GET /api/users/currentuser" "$conns" "$APP/api/users/currentuser" -H "Cookie: session=$SELLER"
  measure "Rust: GET /api/tickets?limit=20" "$conns" "$APP/api/tickets?limit=20"
  measure "Rust: GET /api/orders ($ORDERS orders)" "$conns" "$APP/api/orders" -H "Cookie: session=$BUYER"
  measure "Python: GET /api/activity?limit=20" "$conns" "$APP/api/activity?limit=20" -H "Cookie: session=$BUYER"
  measure "TypeScript: GET /api/search?q=concert&limit=20" "$conns" "$APP/api/search?q=concert&limit=20"
done
LOADED_RSS="$(rss_mib "$APP_PID")"
echo
echo "| tessera up RSS | MiB |"
echo "|---|---|"
echo "| Rust services only, idle | $RUST_RSS |"
echo "| all 8 components, idle after seeding | $IDLE_RSS |"
echo "| all 8 components, after the load | $LOADED_RSS |"
