#!/usr/bin/env bash
# Builds the web client into client/dist: the wasm (release) and wasm-bindgen's JS glue in
# dist/pkg, the stylesheet, and index.html. Output names carry a hash of their content
# (client-<hash>.js, client-<hash>_bg.wasm, style-<hash>.css), so the web component can
# let browsers cache them forever while index.html is always revalidated. Each asset also
# gets a gzip copy (NAME.gz) that the web component sends when the browser accepts gzip.
#
# Installs wasm-bindgen-cli at the version pinned in client/Cargo.lock when the one on
# PATH differs (that install takes several minutes, once).
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
wasm="$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/client.wasm"

content_hash() { sha256sum "$@" | sha256sum | cut -c1-16; }

# Build into a fresh directory and swap it in, so a server reading dist never sees half.
staging="$(mktemp -d "$CLIENT/.dist.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
client="client-$(content_hash "$wasm" "$CLIENT/js/"*.js)"
wasm-bindgen --target web --no-typescript --out-name "$client" --out-dir "$staging/pkg" "$wasm"
style="style-$(content_hash "$CLIENT/style.css").css"
cp "$CLIENT/style.css" "$staging/$style"
# Gzip copies for the web component to send to browsers that accept them (-n: no name
# or timestamp inside, so the same input gives the same bytes).
find "$staging" -type f \( -name '*.wasm' -o -name '*.js' -o -name '*.css' \) -exec gzip -9 -n -k {} +
sed -e "/client\/build.sh fills in/d" -e "s|__CLIENT__|$client|g" -e "s|__STYLE__|$style|g" "$CLIENT/index.html" >"$staging/index.html"

rm -rf "$DIST"
mv "$staging" "$DIST"
chmod 755 "$DIST"
trap - EXIT
echo "built $DIST ($client)" >&2
