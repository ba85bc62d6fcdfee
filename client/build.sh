#!/usr/bin/env bash
# Builds the web client into client/dist: the wasm (release), wasm-bindgen's JS glue in
# dist/pkg, and index.html + style.css. Installs wasm-bindgen-cli at the version pinned in
# client/Cargo.lock when the one on PATH differs (that install takes several minutes).
set -euo pipefail
CLIENT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CLIENT/../target}"
DIST="$CLIENT/dist"

want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$CLIENT/Cargo.lock")"
have="$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)"
if [ "$have" != "$want" ]; then
  echo "installing wasm-bindgen-cli $want (found: ${have:-none})" >&2
  cargo install wasm-bindgen-cli --version "$want"
fi

(cd "$CLIENT" && cargo build --release --locked --target wasm32-unknown-unknown)

rm -rf "$DIST"
mkdir -p "$DIST/pkg"
wasm-bindgen --target web --no-typescript --out-dir "$DIST/pkg" \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/client.wasm"
cp "$CLIENT/index.html" "$CLIENT/style.css" "$DIST/"
echo "built $DIST" >&2
