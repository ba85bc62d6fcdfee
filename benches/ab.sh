#!/usr/bin/env bash
# The benchmarks' hello (benches/hello) served by several host variants side by side, in
# alternating rounds, so that the drift of the machine hits every variant alike: the way
# to see a change of a few percent.
#   bash benches/ab.sh before=/tmp/tessera-old after=target/release/tessera \
#     'traced=target/release/tessera OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318'
# Each argument is LABEL=BINARY [ENV=VALUE ...] (quote it when it has environment).
# Knobs: ROUNDS (4), DURATION (wrk per round, 10s), CONNS ("1 32"). Prints one line per
# variant and connection count: the median requests/s over the rounds, and each round's.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${ROUNDS:-4}"
DURATION="${DURATION:-10s}"
CONNS="${CONNS:-1 32}"
unset RUST_BACKTRACE
(cd "$ROOT" && cargo build --release -q --target wasm32-wasip2 -p hello-guest)

source "$ROOT/benches/lib.sh"

LABELS=()
declare -A URL
for spec in "$@"; do
  label="${spec%%=*}"
  read -r -a words <<<"${spec#*=}"
  binary="${words[0]}"
  log="$STATE/$label.log"
  env "${words[@]:1}" "$binary" up -f "$ROOT/benches/hello/spin.toml" --listen 127.0.0.1:0 \
    --state-dir "$STATE/$label" >"$log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 600); do grep -q "Serving HTTP on" "$log" && break; sleep 0.05; done
  URL[$label]="$(grep -m1 -o 'http://[0-9.:]*' "$log")"
  LABELS+=("$label")
done

declare -A RATES
for conns in $CONNS; do
  for _ in $(seq 1 "$ROUNDS"); do
    for label in "${LABELS[@]}"; do
      RATES[$label,$conns]+="$(rate "$conns" "${URL[$label]}/") "
    done
  done
  for label in "${LABELS[@]}"; do
    echo "$label, $conns connections: median $(median "${RATES[$label,$conns]}") req/s (rounds: ${RATES[$label,$conns]% })"
  done
done
