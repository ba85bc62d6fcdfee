#!/usr/bin/env bash
# Sets up, builds and runs the marketplace on embedded defaults at http://127.0.0.1:3000.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
build_all

# A per-checkout development secret, so sessions survive restarts; never used in production.
mkdir -p "$ROOT/.spin"
if [ -z "${SPIN_VARIABLE_JWT_SECRET:-}" ]; then
  secret_file="$ROOT/.spin/dev-jwt-secret"
  [ -s "$secret_file" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$secret_file"
  SPIN_VARIABLE_JWT_SECRET="$(cat "$secret_file")"
  export SPIN_VARIABLE_JWT_SECRET
fi

cd "$ROOT"
exec "$CARGO_TARGET_DIR/release/tessera" up -f spin.toml \
  --runtime-config-file runtime-config.toml \
  --listen "${TESSERA_LISTEN:-127.0.0.1:3000}" "$@"
