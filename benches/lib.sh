# Sourced by the bench scripts: a scratch directory (STATE) and the servers they start
# (PIDS), both cleaned up when the script exits, however it exits.
STATE="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$STATE"
}
trap cleanup EXIT
