#!/usr/bin/env bash
# Sets up, builds everything once (release profile) and runs every test.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
setup_app
setup_tests
build_all

log "building the host conformance guest"
(cd "$ROOT" && cargo build --release --locked --target wasm32-wasip2 -p conformance-guest)
log "building the host's Python and JavaScript conformance guests (skipped when up to date)"
bash "$ROOT/host/tests/build-guests.sh"

log "running the tests"
cd "$ROOT"
# Native unit tests of every crate, the host's conformance tests, and the black-box
# tests of the app, all against the binaries built above.
cargo test --release --locked --workspace "$@"

log "running activity's Python unit tests (its event decoder, session check and schema migrations, natively)"
.venv/bin/python -m pytest -q -p no:cacheprovider components/activity/tests

log "validating deploy/k8s (kubectl kustomize, schemas, spin.toml consistency)"
.venv/bin/python -m pytest -q deploy/k8s/tests

log "running the browser tests (e2e/: Playwright + Chromium against two running apps)"
(cd "$ROOT/e2e" && ./node_modules/.bin/playwright test)
