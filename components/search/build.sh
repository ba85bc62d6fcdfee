#!/bin/sh
# Builds the search component: `sh components/search/build.sh` from the repo root (what
# spin.toml's [component.search.build] runs). Needs `npm ci` here (scripts/setup.sh) and
# the spin-sdk 5.2.0 crate in cargo's registry (its wit/deps are Spin's WIT).
#   1. the world (wit/world.wit + Spin's WIT deps) and TypeScript declarations generated
#      from it and from wit/events.wit (wit-types.mjs), into target/search-build/types;
#   2. tsc type-checks app.ts against them and emits app.js;
#   3. componentize-js turns app.js into target/wasm32-wasip2/release/search.wasm.
set -eu
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BUILD="$ROOT/target/search-build"
OUT="$ROOT/target/wasm32-wasip2/release/search.wasm"
# componentize-js's output differs from build to build (so would its digest, and every
# `tessera up` would compile it again): rebuild only when an input is newer.
up_to_date=1
[ -f "$OUT" ] || up_to_date=0
for src in "$HERE/app.ts" "$HERE/wit/world.wit" "$HERE/wit-types.mjs" "$HERE/tsconfig.json" \
  "$HERE/package-lock.json" "$HERE/build.sh" "$ROOT/wit/events.wit"; do
  [ "$src" -nt "$OUT" ] && up_to_date=0
done
if [ "$up_to_date" = 1 ]; then echo "search.wasm is up to date" >&2; exit 0; fi
sdk_wit() { ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/spin-sdk-5.2.0/wit 2>/dev/null | head -n1; }
# On a fresh machine nothing may have fetched the crate yet.
[ -n "$(sdk_wit)" ] || (cd "$ROOT" && cargo fetch --locked >/dev/null)
sdk="$(sdk_wit)"
[ -n "$sdk" ] || { echo "spin-sdk 5.2.0 is not in cargo's registry (cargo fetch failed)" >&2; exit 1; }
rm -rf "$BUILD"
mkdir -p "$BUILD/wit/deps" "$(dirname "$OUT")"
cp "$HERE/wit/world.wit" "$BUILD/wit/"
# Only the WASI 0.2 and Spin packages: componentize-js 0.19's WIT parser predates the
# WASI 0.3 release candidates the crate also ships.
for dep in "$sdk"/deps/*; do
  case "$(basename "$dep")" in
    *0.3.0-rc*) ;;
    *) cp -r "$dep" "$BUILD/wit/deps/" ;;
  esac
done
cd "$HERE"
node wit-types.mjs "$BUILD/wit" search "$BUILD/types"
node wit-types.mjs "$ROOT/wit/events.wit" events "$BUILD/types/events"
./node_modules/.bin/tsc -p tsconfig.json
./node_modules/.bin/componentize-js "$BUILD/js/app.js" --wit "$BUILD/wit" -n search -o "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
