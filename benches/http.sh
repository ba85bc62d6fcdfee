#!/usr/bin/env bash
# HTTP throughput and latency of the tessera host, on loopback, with wrk.
#   bash benches/http.sh            (after scripts/test.sh or scripts/dev.sh built everything)
# Prints one markdown table row per scenario; BENCHMARKS.md records the results.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
DURATION="${DURATION:-10s}"
command -v wrk >/dev/null || { echo "install wrk: apt-get install -y wrk" >&2; exit 1; }
unset RUST_BACKTRACE # a captured backtrace per request would distort the numbers

(cd "$ROOT" && cargo build --release -q -p tessera --example native_hello)
(cd "$ROOT" && cargo build --release -q --target wasm32-wasip2 -p conformance-guest)

STATE="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$STATE"
}
trap cleanup EXIT

# Starts a server in the background (not in a subshell, so its PID is recorded for
# cleanup) and waits for its ready line; `url NAME` then prints its base URL.
start() {
  local name="$1"; shift
  "$@" >"$STATE/$name.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 600); do
    grep -q "Serving HTTP on" "$STATE/$name.log" && return
    sleep 0.1
  done
  cat "$STATE/$name.log" >&2; exit 1
}
url() { grep -m1 -o 'http://[0-9.:]*' "$STATE/$1.log"; }

# wrk output → "| scenario | conns | req/s | p50 | p99 |"
measure() {
  local name="$1" conns="$2" url="$3"
  local out; out="$(wrk -t"$(( conns < 2 ? 1 : 2 ))" -c"$conns" -d"$DURATION" --latency "$url")"
  local rps p50 p99
  rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
  p50="$(awk '$1=="50%" {print $2}' <<<"$out")"
  p99="$(awk '$1=="99%" {print $2}' <<<"$out")"
  if grep -q "Non-2xx" <<<"$out"; then echo "$name: non-2xx responses" >&2; fi
  printf '| %s | %s | %s | %s | %s |\n' "$name" "$conns" "$rps" "$p50" "$p99"
}

FREE_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"

start native "$TARGET/release/examples/native_hello"
start hello env SPIN_VARIABLE_SECRET_TOKEN=x "$TARGET/release/tessera" up \
  -f "$ROOT/host/tests/apps/conformance/spin.toml" \
  --runtime-config-file "$ROOT/host/tests/apps/conformance/runtime-config.toml" \
  --listen 127.0.0.1:0 --state-dir "$STATE/hello"
# The same hello with the opt-in metrics listener on: what recording costs per request.
start hello_metrics env SPIN_VARIABLE_SECRET_TOKEN=x "$TARGET/release/tessera" up \
  -f "$ROOT/host/tests/apps/conformance/spin.toml" \
  --runtime-config-file "$ROOT/host/tests/apps/conformance/runtime-config.toml" \
  --listen 127.0.0.1:0 --state-dir "$STATE/hello_metrics" --metrics 127.0.0.1:0
start app env SPIN_VARIABLE_JWT_SECRET=bench SPIN_VARIABLE_REDIS_ADDRESS="redis://127.0.0.1:$FREE_PORT" \
  SPIN_VARIABLE_STRIPE_SECRET_KEY=sk_test_bench SPIN_VARIABLE_STRIPE_PUBLISHABLE_KEY=pk_test_bench \
  SPIN_VARIABLE_STRIPE_WEBHOOK_SECRET=whsec_bench \
  "$TARGET/release/tessera" up -f "$ROOT/spin.toml" --runtime-config-file "$ROOT/runtime-config.toml" \
  --listen 127.0.0.1:0 --state-dir "$STATE/app"
NATIVE="$(url native)"; HELLO="$(url hello)"; APP="$(url app)"
HELLO_METRICS="$(grep -m1 -o 'Serving HTTP on http://[0-9.:]*' "$STATE/hello_metrics.log" | grep -o 'http://.*')"

echo "| scenario | connections | requests/s | p50 | p99 |"
echo "|---|---|---|---|---|"
for conns in 1 32; do
  measure "native hyper hello (baseline)" "$conns" "$NATIVE/"
  measure "tessera: hello component" "$conns" "$HELLO/denied/hello"
  measure "tessera: hello component, --metrics on" "$conns" "$HELLO_METRICS/denied/hello"
  measure "tessera: GET /api/users/currentuser" "$conns" "$APP/api/users/currentuser"
done
