#!/usr/bin/env bash
# The whole speed table in one run, each row beside the native baseline measured in the
# same run (absolute numbers drift between runs and machines; ratios within a run do not).
#   bash benches/run.sh        (after scripts/test.sh or scripts/dev.sh built everything)
# Knobs: DURATION (wrk per row, 10s), TICKETS (200), ORDERS (20), ROUNDS (propagation, 200),
# TESSERA_BIN (the host binary, default target/release/tessera), MANIFEST (the app's
# spin.toml, default the repository's: point it at another build to compare the two).
#
# Rows: a native hyper hello (the baseline: no wasm at all); tessera serving the smallest
# spin-sdk 5.2 component (benches/hello: answers `hello`, a fresh instance per request),
# with and without the opt-in metrics listener, and with tracing on (OTLP to a local
# receiver that discards the spans, benches/otlp_sink.py); the conformance guest's /hello,
# which builds a 20-route spin-sdk router per request first (the hello of the tables
# before session 12); the marketplace's read endpoints (Rust, Python,
# TypeScript) on an app seeded through its API, and its ticket list traced; event
# propagation (ticket created → orderable, as a client sees it), back to back and on a
# quiet app; the app's RSS and PSS, and its CPU and wake-ups when idle; and `tessera up`
# to its first answer, cold (empty compile cache) and warm.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
TESSERA="${TESSERA_BIN:-$TARGET/release/tessera}"
MANIFEST="${MANIFEST:-$ROOT/spin.toml}"
DURATION="${DURATION:-10s}"
TICKETS="${TICKETS:-200}"
ORDERS="${ORDERS:-20}"
ROUNDS="${ROUNDS:-200}"
unset RUST_BACKTRACE # a captured backtrace per request would distort the numbers

(cd "$ROOT" && cargo build --release -q -p tessera --example native_hello)
(cd "$ROOT" && cargo build --release -q --target wasm32-wasip2 -p conformance-guest -p hello-guest)
(cd "$ROOT" && cargo build --release -q -p tessera-blackbox --example event_propagation)

source "$ROOT/benches/lib.sh"

now_ms() { date +%s%3N; }
rss_mib() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
# PSS: each page shared with other mappings counted by its share. The compiled images of
# the Python and JavaScript components are mapped once per pooled slot that ran them, and
# RSS counts those page-cache pages again in every slot.
pss_mib() { awk '/^Pss:/ {printf "%.0f", $2 / 1024}' "/proc/$1/smaps_rollup"; }

start_redis

# Sets ELAPSED_MS to the time from `tessera up` to the first answer of the Python component
# (the slowest to instantiate; 401: nobody is signed in); the state dir, and so the compile
# cache, is shared by calls.
time_to_first_answer() {
  local name="$1" started
  started="$(now_ms)"
  up_app "$name" "$TESSERA" "$STATE/startup"
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$(url "$name")/api/activity")" = 401 ]; do
    sleep 0.01
  done
  ELAPSED_MS=$(( $(now_ms) - started ))
  kill "$LAST_PID"; wait "$LAST_PID" 2>/dev/null || true
}
time_to_first_answer cold; COLD_MS="$ELAPSED_MS"
time_to_first_answer warm; WARM_MS="$ELAPSED_MS"

start native "$TARGET/release/examples/native_hello"
NATIVE="$(url native)"
HELLO_ARGS=(-f "$ROOT/benches/hello/spin.toml" --listen 127.0.0.1:0)
start hello "$TESSERA" up "${HELLO_ARGS[@]}" --state-dir "$STATE/hello"
HELLO="$(url hello)"
start hello_metrics "$TESSERA" up "${HELLO_ARGS[@]}" --state-dir "$STATE/hello_metrics" \
  --metrics 127.0.0.1:0
HELLO_METRICS="$(url hello_metrics)"
start otlp python3 "$ROOT/benches/otlp_sink.py"
OTLP="$(url otlp)"
TRACING=(OTEL_EXPORTER_OTLP_ENDPOINT="$OTLP")
start hello_traced env "${TRACING[@]}" "$TESSERA" up "${HELLO_ARGS[@]}" \
  --state-dir "$STATE/hello_traced"
HELLO_TRACED="$(url hello_traced)"
HELLO_TRACED_PID="$LAST_PID"
start routed env SPIN_VARIABLE_SECRET_TOKEN=x "$TESSERA" up \
  -f "$ROOT/host/tests/apps/conformance/spin.toml" \
  --runtime-config-file "$ROOT/host/tests/apps/conformance/runtime-config.toml" \
  --listen 127.0.0.1:0 --state-dir "$STATE/routed"
ROUTED="$(url routed)"

mkdir -p "$STATE/app"
cp -r "$STATE/startup/cache" "$STATE/app/cache" # compiled above; the data starts empty
up_app app "$TESSERA" "$STATE/app"
APP_PID="$LAST_PID"
APP="$(url app)"
bash "$ROOT/benches/seed.sh" "$APP" "$STATE" "$TICKETS" "$ORDERS"
SELLER="$(cat "$STATE/seller.session")"
BUYER="$(cat "$STATE/buyer.session")"
TICKET="$(cat "$STATE/ticket.id")"
IDLE_RSS="$(rss_mib "$APP_PID")"; IDLE_PSS="$(pss_mib "$APP_PID")"
# Left alone (the host's epoch thread parks after 100 ms without guests), the app
# should cost next to nothing.
sleep 2
read -r IDLE_CPU_MS IDLE_WAKEUPS <<<"$(idle_cost "$APP_PID" 5)"
# The same data served by a second, traced process (readers share sqlite files safely).
start app_traced env "${APP_ENV[@]}" "${TRACING[@]}" "$TESSERA" up \
  -f "$MANIFEST" --runtime-config-file "$ROOT/runtime-config.toml" \
  --listen 127.0.0.1:0 --state-dir "$STATE/app" --no-dev-services
APP_TRACED="$(url app_traced)"
APP_TRACED_PID="$LAST_PID"
# And by one that records one trace in ten (OpenTelemetry's standard sampler variables).
start app_sampled env "${APP_ENV[@]}" "${TRACING[@]}" OTEL_TRACES_SAMPLER=traceidratio \
  OTEL_TRACES_SAMPLER_ARG=0.1 "$TESSERA" up \
  -f "$MANIFEST" --runtime-config-file "$ROOT/runtime-config.toml" \
  --listen 127.0.0.1:0 --state-dir "$STATE/app" --no-dev-services
APP_SAMPLED="$(url app_sampled)"
APP_SAMPLED_PID="$LAST_PID"

# wrk → "name conns req/s p50 p99" on one line (latencies as wrk prints them).
measure() {
  local name="$1" conns="$2" url="$3"; shift 3
  local out; out="$(wrk -t"$(( conns < 2 ? 1 : 2 ))" -c"$conns" -d"$DURATION" --latency "$@" "$url")"
  if grep -q "Non-2xx" <<<"$out"; then echo "$name: non-2xx responses" >&2; fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$conns" \
    "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '$1=="50%" {print $2}' <<<"$out")" "$(awk '$1=="99%" {print $2}' <<<"$out")"
}
ROWS="$STATE/rows.tsv"
for conns in 1 32; do
  measure "native hyper hello (baseline)" "$conns" "$NATIVE/"
  measure "tessera: hello component" "$conns" "$HELLO/"
  measure "tessera: hello component, --metrics on" "$conns" "$HELLO_METRICS/"
  measure "tessera: hello component, tracing on" "$conns" "$HELLO_TRACED/"
  measure "tessera: hello behind a 20-route guest router" "$conns" "$ROUTED/denied/hello"
  measure "GET /api/users/currentuser" "$conns" "$APP/api/users/currentuser" -H "Cookie: session=$SELLER"
  measure "GET /api/tickets?limit=20" "$conns" "$APP/api/tickets?limit=20"
  measure "GET /api/tickets?limit=20, tracing on" "$conns" "$APP_TRACED/api/tickets?limit=20"
  measure "GET /api/tickets?limit=20, tracing on, 10 % sampled" "$conns" "$APP_SAMPLED/api/tickets?limit=20"
  measure "GET /api/tickets/:id" "$conns" "$APP/api/tickets/$TICKET"
  measure "GET /api/orders ($ORDERS orders)" "$conns" "$APP/api/orders" -H "Cookie: session=$BUYER"
  measure "Python: GET /api/activity?limit=20" "$conns" "$APP/api/activity?limit=20" -H "Cookie: session=$BUYER"
  measure "TypeScript: GET /api/search?q=concert" "$conns" "$APP/api/search?q=concert&limit=20"
done >"$ROWS"
LOADED_RSS="$(rss_mib "$APP_PID")"; LOADED_PSS="$(pss_mib "$APP_PID")"

propagation() {
  TESSERA_MANIFEST="$MANIFEST" TESSERA_BIN="$TESSERA" PAUSE_MS="$1" \
    "$TARGET/release/examples/event_propagation" "$ROUNDS" | grep -o 'p50 .*'
}
PROPAGATION="$(propagation 0)"
PROPAGATION_SPACED="$(propagation 60)"

echo "| scenario | connections | requests/s | vs native | vs hello | p50 | p99 |"
echo "|---|---|---|---|---|---|---|"
python3 - "$ROWS" <<'EOF'
import sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
base = {c: float(r) for n, c, r, *_ in rows if n.startswith("native")}
hello = {c: float(r) for n, c, r, *_ in rows if n == "tessera: hello component"}
for name, conns, rps, p50, p99 in rows:
    rate = float(rps)
    print(f"| {name} | {conns} | {rate:,.0f} | {100 * rate / base[conns]:.1f} % "
          f"| {100 * rate / hello[conns]:.0f} % | {p50} | {p99} |")
EOF
echo
echo "| also measured | |"
echo "|---|---|"
echo "| event propagation, ticket created → orderable ($ROUNDS rounds back to back) | $PROPAGATION |"
echo "| event propagation, the same with rounds 60 ms apart (a quiet app) | $PROPAGATION_SPACED |"
echo "| tessera up RSS / PSS, whole app idle after seeding | $IDLE_RSS / $IDLE_PSS MiB |"
echo "| tessera up, whole app idle after seeding: CPU / wake-ups per second | $IDLE_CPU_MS ms / $IDLE_WAKEUPS |"
echo "| tessera up RSS / PSS, whole app after the load | $LOADED_RSS / $LOADED_PSS MiB |"
echo "| tessera up → first answer, cold compile cache | $COLD_MS ms |"
echo "| tessera up → first answer, warm compile cache | $WARM_MS ms |"
# Stopped, the traced hosts export what they still hold and log how many spans a full
# queue made them drop (the request path never waits for the exporter).
TRACED_PIDS=("$HELLO_TRACED_PID" "$APP_TRACED_PID" "$APP_SAMPLED_PID")
kill "${TRACED_PIDS[@]}"; wait "${TRACED_PIDS[@]}" 2>/dev/null || true
read -r EXPORTS EXPORTED_BYTES < <(curl -s "$OTLP/stats")
DROPPED="$(grep -o 'dropped_span_count=[0-9]*' "$STATE"/{hello_traced,app_traced,app_sampled}.log \
  | sed "s|$STATE/||" | tr '\n' ' ' || true)"
echo "| OTLP exports received by the local receiver | $EXPORTS ($EXPORTED_BYTES bytes)${DROPPED:+; $DROPPED} |"
