# The load generator, installed like every other tool (Debian's package).
command -v wrk >/dev/null 2>&1 || (source "$(dirname "${BASH_SOURCE[0]}")/../scripts/setup.sh" && apt_install wrk)

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

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts a server in the background (not in a subshell, so its PID is recorded for
# cleanup) and waits for its ready line; LAST_PID is its PID, `url NAME` its base URL.
start() {
  local name="$1"; shift
  "$@" >"$STATE/$name.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  for _ in $(seq 1 1200); do
    grep -q "Serving HTTP on" "$STATE/$name.log" && return
    sleep 0.05
  done
  cat "$STATE/$name.log" >&2; exit 1
}
url() { grep -m1 -o 'Serving HTTP on http://[0-9.:]*' "$STATE/$1.log" | grep -o 'http://.*'; }

# A redis-server of the benchmark's own on a free port, and APP_ENV: the marketplace's
# variables pointing at it (cheap password hashing, so seeding is quick).
start_redis() {
  REDIS_PORT="$(free_port)"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --notify-keyspace-events Ex >"$STATE/redis.log" 2>&1 &
  PIDS+=($!)
  APP_ENV=(SPIN_VARIABLE_JWT_SECRET=bench SPIN_VARIABLE_REDIS_ADDRESS="redis://127.0.0.1:$REDIS_PORT"
    SPIN_VARIABLE_STRIPE_SECRET_KEY=sk_test_bench SPIN_VARIABLE_STRIPE_PUBLISHABLE_KEY=pk_test_bench
    SPIN_VARIABLE_STRIPE_WEBHOOK_SECRET=whsec_bench
    SPIN_VARIABLE_ARGON2_MEMORY_KIB=64 SPIN_VARIABLE_ARGON2_ITERATIONS=1
    # As scripts/run_app.sh runs the app (unless the caller set it, empty included).
    TESSERA_REUSE_INSTANCES="${TESSERA_REUSE_INSTANCES-activity,search}")
}

# `tessera up` (BINARY) of the marketplace (MANIFEST) on STATE_DIR (its data and compile
# cache), with APP_ENV and any further FLAGs: up_app NAME BINARY STATE_DIR [FLAG ...].
up_app() {
  local name="$1" binary="$2" state_dir="$3"; shift 3
  start "$name" env "${APP_ENV[@]}" "$binary" up \
    -f "$MANIFEST" --runtime-config-file "$ROOT/runtime-config.toml" \
    --listen 127.0.0.1:0 --state-dir "$state_dir" "$@"
}

# wrk's requests/s for CONNS connections to URL (extra wrk arguments after it).
rate() {
  local conns="$1" url="$2"; shift 2
  wrk -t"$(( conns < 2 ? 1 : 2 ))" -c"$conns" -d"$DURATION" "$@" "$url" \
    | awk '/Requests\/sec/ {printf "%.0f", $2}'
}
# The median of the numbers in $1 (space-separated).
median() {
  tr ' ' '\n' <<<"$1" | grep . | sort -n \
    | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'
}

# What process PID costs while nothing asks anything of it, over SECONDS (5): its CPU in
# milliseconds per second and its threads' wake-ups (voluntary context switches) per
# second, as "CPU_MS WAKEUPS". Call it after the process has been left alone for a while.
idle_cost() {
  local pid="$1" seconds="${2:-5}" hz cpu0 cpu1 wake0 wake1
  hz="$(getconf CLK_TCK)"
  cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
  wakeups() { cat /proc/"$pid"/task/*/status | awk '/^voluntary_ctxt_switches/ {n += $2} END {print n}'; }
  cpu0="$(cpu)"; wake0="$(wakeups)"
  sleep "$seconds"
  cpu1="$(cpu)"; wake1="$(wakeups)"
  awk -v c="$((cpu1 - cpu0))" -v w="$((wake1 - wake0))" -v s="$seconds" -v hz="$hz" \
    'BEGIN {printf "%.1f %.1f", c * 1000 / hz / s, w / s}'
}
