#!/usr/bin/env bash
# Hello in Rust, Python and JavaScript under `tessera up`: first-compile time, then wrk
# requests/s and latency at 1 and 32 connections. Run after scripts/test.sh built the host
# and the guests:  bash host/benches/polyglot.sh   (DURATION=10s by default)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
DURATION="${DURATION:-10s}"
command -v wrk >/dev/null || { echo "install wrk: apt-get install -y wrk" >&2; exit 1; }
unset RUST_BACKTRACE

STATE="$(mktemp -d)"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; [ -n "$PID" ] && wait "$PID" 2>/dev/null; rm -rf "$STATE"; }
trap cleanup EXIT

# up LOG: starts tessera on the polyglot + conformance apps' guests, waits for the ready line.
up() {
  local log="$1"
  env SPIN_VARIABLE_SECRET_TOKEN=x "$TARGET/release/tessera" up -f "$STATE/spin.toml" \
    --listen 127.0.0.1:0 --state-dir "$STATE/state" >"$log" 2>&1 &
  PID=$!
  for _ in $(seq 1 1200); do
    grep -q "Serving HTTP on" "$log" && return
    sleep 0.1
  done
  cat "$log" >&2; exit 1
}
down() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }

cat >"$STATE/spin.toml" <<TOML
spin_manifest_version = 2
[application]
name = "polyglot-bench"
[[trigger.http]]
route = "/rust/..."
component = "rust"
[[trigger.http]]
route = "/py/..."
component = "py"
[[trigger.http]]
route = "/js/..."
component = "js"
[component.rust]
source = "$TARGET/wasm32-wasip2/release/conformance_guest.wasm"
[component.py]
source = "$ROOT/target/guests/python_guest.wasm"
[component.js]
source = "$ROOT/target/guests/js_guest.wasm"
TOML

up "$STATE/first.log"
echo "First start (compile, empty cache):"
grep -o 'component=[a-z]* elapsed_ms=[0-9]*' "$STATE/first.log" | sed 's/^/  /' || grep compiled "$STATE/first.log"
down
started=$(date +%s%N)
up "$STATE/second.log"
curl -fsS "$(grep -m1 -o 'http://[0-9.:]*' "$STATE/second.log")/py/hello" >/dev/null
echo "Second start to first Python answer (warm cache): $(( ($(date +%s%N) - started) / 1000000 )) ms"
URL="$(grep -m1 -o 'http://[0-9.:]*' "$STATE/second.log")"

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
echo "| hello component | connections | requests/s | p50 | p99 |"
echo "|---|---|---|---|---|"
for conns in 1 32; do
  measure "Rust (spin-sdk 5.2)" "$conns" "$URL/rust/hello"
  measure "Python (componentize-py 0.17.2)" "$conns" "$URL/py/hello"
  measure "JavaScript (componentize-js 0.19.3)" "$conns" "$URL/js/hello"
done
