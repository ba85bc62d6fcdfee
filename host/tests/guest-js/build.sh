#!/bin/sh
# Builds the JavaScript conformance guest: `sh build.sh OUT.wasm`. Needs `npm ci` here and
# the spin-sdk 5.2.0 crate in cargo's registry (its wit/deps are Spin's WIT).
set -eu
cd "$(dirname "$0")"
out="$1"
sdk="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/spin-sdk-5.2.0/wit 2>/dev/null | head -n1)"
[ -n "$sdk" ] || { echo "spin-sdk 5.2.0 is not in cargo's registry: run cargo fetch" >&2; exit 1; }
wit="$(mktemp -d)"
trap 'rm -rf "$wit"' EXIT
cp wit/world.wit "$wit/"
mkdir "$wit/deps"
# Only the WASI 0.2 and Spin packages: componentize-js 0.19's WIT parser predates the
# WASI 0.3 release candidates the crate also ships.
for dep in "$sdk"/deps/*; do
  case "$(basename "$dep")" in
    *0.3.0-rc*) ;;
    *) cp -r "$dep" "$wit/deps/" ;;
  esac
done
mkdir -p "$(dirname "$out")"
./node_modules/.bin/componentize-js app.js --wit "$wit" -n guest -o "$out"
