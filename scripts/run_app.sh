#!/usr/bin/env bash
# Runs the already built marketplace: `tessera up` (or $TESSERA_COMMAND, e.g. `watch`) on
# $TESSERA_LISTEN (127.0.0.1:3000).
# Without a Stripe key in the environment it also runs localstripe (a fake Stripe) on
# 127.0.0.1:$LOCALSTRIPE_PORT (8420) and registers the app's webhook with it; to use a real
# Stripe test account instead, export SPIN_VARIABLE_STRIPE_SECRET_KEY,
# SPIN_VARIABLE_STRIPE_PUBLISHABLE_KEY and SPIN_VARIABLE_STRIPE_WEBHOOK_SECRET.
# State (sqlite files, the dev session secret) lives in $TESSERA_STATE_DIR (.spin).
# Used by dev.sh and by the browser tests (e2e/), which run two apps side by side.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
LISTEN="${TESSERA_LISTEN:-127.0.0.1:3000}"
LOCALSTRIPE_PORT="${LOCALSTRIPE_PORT:-8420}"
STATE_DIR="${TESSERA_STATE_DIR:-$ROOT/.spin}"
mkdir -p "$STATE_DIR"

# A per-state-dir development secret, so sessions survive restarts; never used in production.
if [ -z "${SPIN_VARIABLE_JWT_SECRET:-}" ]; then
  secret_file="$STATE_DIR/dev-jwt-secret"
  [ -s "$secret_file" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$secret_file"
  SPIN_VARIABLE_JWT_SECRET="$(cat "$secret_file")"
  export SPIN_VARIABLE_JWT_SECRET
fi

PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

LOCALSTRIPE=""
if [ -z "${SPIN_VARIABLE_STRIPE_SECRET_KEY:-}" ]; then
  LOCALSTRIPE="http://127.0.0.1:$LOCALSTRIPE_PORT"
  echo "starting localstripe at $LOCALSTRIPE (no Stripe key configured)" >&2
  "$ROOT/.venv/bin/python" "$ROOT/scripts/run_localstripe.py" "$LOCALSTRIPE_PORT" \
    >"$STATE_DIR/localstripe.log" 2>&1 &
  PIDS+=($!)
  export SPIN_VARIABLE_STRIPE_API_BASE="$LOCALSTRIPE"
  export SPIN_VARIABLE_STRIPE_SECRET_KEY="sk_test_localstripe"
  export SPIN_VARIABLE_STRIPE_PUBLISHABLE_KEY="pk_test_localstripe"
  export SPIN_VARIABLE_STRIPE_WEBHOOK_SECRET="whsec_localstripe"
  export SPIN_VARIABLE_STRIPE_JS_URL="$LOCALSTRIPE/js.stripe.com/v3/"
fi

# The Python and TypeScript services handle their messages in reused instances (a fresh
# CPython or SpiderMonkey instance costs milliseconds per message); a Tessera extension,
# see the README. Set TESSERA_REUSE_INSTANCES= (empty) for a fresh instance every time.
export TESSERA_REUSE_INSTANCES="${TESSERA_REUSE_INSTANCES-activity,search}"

cd "$ROOT"
"$CARGO_TARGET_DIR/release/tessera" "${TESSERA_COMMAND:-up}" -f spin.toml --runtime-config-file runtime-config.toml \
  --listen "$LISTEN" --state-dir "$STATE_DIR" "$@" &
TESSERA=$!
PIDS+=($TESSERA)

if [ -n "$LOCALSTRIPE" ]; then
  # Let localstripe deliver payment_intent.succeeded to our webhook, signed like Stripe.
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$LOCALSTRIPE/js.stripe.com/v3/" 2>/dev/null &&
      curl -fsS -o /dev/null "http://$LISTEN/api/users/currentuser" 2>/dev/null && break
    sleep 0.2
  done
  curl -fsS -o /dev/null -X POST "$LOCALSTRIPE/_config/webhooks/tessera" \
    -d "url=http://$LISTEN/api/payments/webhook" -d "secret=whsec_localstripe" \
    -d "events[]=payment_intent.succeeded" || echo "could not register the localstripe webhook" >&2
fi
wait "$TESSERA"
