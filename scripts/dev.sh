#!/usr/bin/env bash
# Sets up, builds and runs the marketplace on embedded defaults at http://127.0.0.1:3000.
# Without a Stripe key in the environment it also runs localstripe (a fake Stripe) on
# 127.0.0.1:8420; to use a real Stripe test account instead, export
# SPIN_VARIABLE_STRIPE_SECRET_KEY, SPIN_VARIABLE_STRIPE_PUBLISHABLE_KEY and
# SPIN_VARIABLE_STRIPE_WEBHOOK_SECRET before running this.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
build_all

LISTEN="${TESSERA_LISTEN:-127.0.0.1:3000}"
mkdir -p "$ROOT/.spin"

# A per-checkout development secret, so sessions survive restarts; never used in production.
if [ -z "${SPIN_VARIABLE_JWT_SECRET:-}" ]; then
  secret_file="$ROOT/.spin/dev-jwt-secret"
  [ -s "$secret_file" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$secret_file"
  export SPIN_VARIABLE_JWT_SECRET="$(cat "$secret_file")"
fi

PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

LOCALSTRIPE=""
if [ -z "${SPIN_VARIABLE_STRIPE_SECRET_KEY:-}" ]; then
  LOCALSTRIPE="http://127.0.0.1:8420"
  log "starting localstripe at $LOCALSTRIPE (no Stripe key configured)"
  "$VENV/bin/python" "$ROOT/scripts/run_localstripe.py" 8420 >"$ROOT/.spin/localstripe.log" 2>&1 &
  PIDS+=($!)
  export SPIN_VARIABLE_STRIPE_API_BASE="$LOCALSTRIPE"
  export SPIN_VARIABLE_STRIPE_SECRET_KEY="sk_test_localstripe"
  export SPIN_VARIABLE_STRIPE_PUBLISHABLE_KEY="pk_test_localstripe"
  export SPIN_VARIABLE_STRIPE_WEBHOOK_SECRET="whsec_localstripe"
  export SPIN_VARIABLE_STRIPE_JS_URL="$LOCALSTRIPE/js.stripe.com/v3/"
fi

cd "$ROOT"
"$CARGO_TARGET_DIR/release/tessera" up -f spin.toml \
  --runtime-config-file runtime-config.toml --listen "$LISTEN" "$@" &
TESSERA=$!
PIDS+=($TESSERA)

if [ -n "$LOCALSTRIPE" ]; then
  # Let localstripe deliver payment_intent.succeeded to our webhook, signed like Stripe.
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$LOCALSTRIPE/js.stripe.com/v3/" 2>/dev/null && \
      curl -fsS -o /dev/null "http://$LISTEN/api/users/currentuser" 2>/dev/null && break
    sleep 0.2
  done
  curl -fsS -o /dev/null -X POST "$LOCALSTRIPE/_config/webhooks/tessera" \
    -d "url=http://$LISTEN/api/payments/webhook" -d "secret=whsec_localstripe" \
    -d "events[]=payment_intent.succeeded" || log "could not register the localstripe webhook"
fi
wait "$TESSERA"
