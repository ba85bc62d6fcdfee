#!/usr/bin/env bash
# Runs the production shape on this machine, from deploy/k8s itself: every SpinApp of the
# overlay as its own `tessera up --component-id` processes (its replicas), nginx as the
# ingress, one Redis (append-only file) and localstripe. Serves until Ctrl-C.
#
#   bash scripts/topology.sh [--overlay prod] [--port 8080] [--min-replicas 2]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
setup_app
setup_nginx
command -v kubectl >/dev/null 2>&1 || {
  echo "kubectl is missing: it renders deploy/k8s (kubectl kustomize); Debian does not package it" >&2
  exit 1
}
build_all
log "building the topology runner"
(cd "$ROOT" && cargo build --release --locked -p tessera-blackbox --example topology)
cd "$ROOT"
exec "$CARGO_TARGET_DIR/release/examples/topology" "$@"
