#!/bin/sh
# Builds the activity component: `sh components/activity/build.sh` from the repo root (what
# spin.toml's [component.activity.build] runs). Needs scripts/setup.sh's .venv-py-guest
# (componentize-py 0.17.2 + spin-sdk 3.4.1). The event records are generated from
# wit/events.wit into target/activity-gen first, so none are written by hand.
set -eu
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PY="$ROOT/.venv-py-guest/bin"
OUT="$ROOT/target/wasm32-wasip2/release/activity.wasm"
GEN="$ROOT/target/activity-gen"
# componentize-py's output differs from build to build (so would its digest, and every
# `tessera up` would compile it again): rebuild only when an input is newer.
up_to_date=1
[ -f "$OUT" ] || up_to_date=0
for src in "$ROOT"/components/activity/*.py "$ROOT/wit/events.wit" "$0" "$PY/componentize-py"; do
  [ "$src" -nt "$OUT" ] && up_to_date=0
done
if [ "$up_to_date" = 1 ]; then echo "activity.wasm is up to date" >&2; exit 0; fi
SITE="$("$PY/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
rm -rf "$GEN"
"$PY/componentize-py" -d "$ROOT/wit/events.wit" -w events --world-module tessera_events bindings "$GEN"
mkdir -p "$(dirname "$OUT")"
cd "$ROOT/components/activity"
"$PY/componentize-py" -d "$SITE/spin_sdk/wit" -w spin-all componentize app \
  -p . -p "$GEN" -p "$SITE" -o "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
