#!/usr/bin/env bash
# Web client size and time to first render (Chromium, loopback, cold cache per load).
#   bash benches/client.sh [RUNS]   (after scripts/test.sh or scripts/dev.sh built everything)
# Starts the built app with run_app.sh on free ports, prints markdown table rows.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HTTP="$(free_port)"
STATE="$(mktemp -d)"
TESSERA_LISTEN="127.0.0.1:$HTTP" TESSERA_STATE_DIR="$STATE" LOCALSTRIPE_PORT="$(free_port)" \
  SPIN_VARIABLE_REDIS_ADDRESS="redis://127.0.0.1:$(free_port)" \
  bash "$ROOT/scripts/run_app.sh" >"$STATE/app.log" 2>&1 &
APP=$!
trap 'kill $APP 2>/dev/null || true; wait $APP 2>/dev/null || true; rm -rf "$STATE"' EXIT
for _ in $(seq 1 300); do
  curl -fs -o /dev/null "http://127.0.0.1:$HTTP/api/users/currentuser" && break
  sleep 0.2
done
node "$ROOT/benches/client.mjs" "http://127.0.0.1:$HTTP/" "$ROOT/client/dist" "${1:-20}"
