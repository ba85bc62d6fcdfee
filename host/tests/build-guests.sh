#!/usr/bin/env bash
# Builds the host's Python and JavaScript conformance guests into target/guests/, once:
# each is rebuilt only when its sources are newer than the wasm. Needs the toolchains
# scripts/setup.sh installs (.venv-py-guest with componentize-py + spin-sdk, and
# host/tests/guest-js/node_modules with componentize-js) and the spin-sdk 5.2.0 crate in
# cargo's registry (the Rust conformance guest's build fetches it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="$ROOT/target/guests"
mkdir -p "$OUT"

stale() { # stale OUT SOURCES...: whether OUT is missing or older than any source
  local out="$1"; shift
  [ -f "$out" ] || return 0
  for src in "$@"; do [ "$src" -nt "$out" ] && return 0; done
  return 1
}

PY_DIR="$ROOT/host/tests/guest-python"
if stale "$OUT/python_guest.wasm" "$PY_DIR/app.py" "${BASH_SOURCE[0]}"; then
  echo "==> building the Python guest (componentize-py)" >&2
  SITE="$("$ROOT/.venv-py-guest/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  (cd "$PY_DIR" && "$ROOT/.venv-py-guest/bin/componentize-py" -d "$SITE/spin_sdk/wit" -w spin-all \
    componentize app -p . -p "$SITE" -o "$OUT/python_guest.wasm.tmp")
  mv "$OUT/python_guest.wasm.tmp" "$OUT/python_guest.wasm"
fi

JS_DIR="$ROOT/host/tests/guest-js"
if stale "$OUT/js_guest.wasm" "$JS_DIR/app.js" "$JS_DIR/wit/world.wit" "$JS_DIR/build.sh" "$JS_DIR/package-lock.json"; then
  echo "==> building the JavaScript guest (componentize-js)" >&2
  sh "$JS_DIR/build.sh" "$OUT/js_guest.wasm.tmp"
  mv "$OUT/js_guest.wasm.tmp" "$OUT/js_guest.wasm"
fi
