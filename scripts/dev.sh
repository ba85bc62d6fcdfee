#!/usr/bin/env bash
# Sets up, builds and runs the marketplace on embedded defaults at http://127.0.0.1:3000,
# with localstripe as Stripe unless a Stripe key is configured (see run_app.sh). The app
# runs under `tessera watch`: saving a component's source rebuilds and reloads just that
# component (TESSERA_COMMAND=up for a plain run).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
setup_app
build_all
TESSERA_COMMAND="${TESSERA_COMMAND:-watch}" exec bash "$ROOT/scripts/run_app.sh" "$@"
