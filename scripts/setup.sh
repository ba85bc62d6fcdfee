#!/usr/bin/env bash
# Installs what Tessera needs on a Debian machine with rustup. Idempotent: every step is
# skipped when its tool is already present. Sourced by dev.sh (`setup_app`: what building
# and running the app needs) and test.sh (`setup_app` and `setup_tests`: the test servers,
# the host's test guests, the deploy checks and the browser tests).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if [ "$apt_updated" -eq 0 ]; then
    log "apt-get update"
    $sudo apt-get update -qq
    apt_updated=1
  fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

setup_rust() {
  # rust-toolchain.toml pins the toolchain; make sure its wasm targets are installed.
  local installed
  installed="$(cd "$ROOT" && rustup target list --installed)"
  for target in wasm32-wasip2 wasm32-unknown-unknown; do
    if ! grep -qx "$target" <<<"$installed"; then
      log "rustup target add $target"
      (cd "$ROOT" && rustup target add "$target")
    fi
  done
}

setup_redis() {
  # Redis for the event triggers and tests (started by `tessera up` and the tests).
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
}

setup_test_services() {
  # An OCI registry for the `tessera registry` tests (they start their own instance).
  [ -x /usr/bin/docker-registry ] || apt_install docker-registry
  # Real servers for the host's outbound PostgreSQL / MySQL / MQTT tests (each test
  # starts its own on a free loopback port in a temp dir).
  compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || apt_install postgresql
  command -v mariadbd >/dev/null 2>&1 || apt_install mariadb-server
  command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || apt_install mosquitto
}

setup_nginx() {
  # The ingress of the production topology (tests/src/topology, scripts/topology.sh); each
  # run starts its own from a temporary directory. The package's own service is not used.
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || apt_install nginx
}

LOCALSTRIPE_VERSION=1.15.10
VENV="$ROOT/.venv"

setup_localstripe() {
  # localstripe: a fake Stripe API for development and tests, in a project-local venv.
  if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import localstripe' 2>/dev/null; then
    return 0
  fi
  log "installing localstripe $LOCALSTRIPE_VERSION into .venv"
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    apt_install python3-venv
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install -q "localstripe==$LOCALSTRIPE_VERSION"
}

# Offline validation of deploy/k8s (deploy/k8s/tests): kubernetes-validate bundles the
# Kubernetes schemas, jsonschema checks SpinKube's CRDs. Same .venv as localstripe.
K8S_TEST_PACKAGES=(kubernetes-validate==1.37.0 jsonschema==4.26.0 pyyaml==6.0.3 pytest==9.2.0)

setup_k8s_tests() {
  if "$VENV/bin/python" -c 'import kubernetes_validate, jsonschema, yaml, pytest' 2>/dev/null; then
    return 0
  fi
  log "installing the deploy/k8s test tools into .venv"
  "$VENV/bin/pip" install -q "${K8S_TEST_PACKAGES[@]}"
}

PLAYWRIGHT_VERSION=1.65.1

setup_e2e() {
  # Browser tests: Debian's Chromium driven by Playwright. Playwright's own browser download
  # is skipped (and would fail offline); e2e/playwright.config.js points at /usr/bin/chromium.
  command -v chromium >/dev/null 2>&1 || apt_install chromium
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  local installed="$ROOT/e2e/node_modules/@playwright/test/package.json"
  if [ -f "$installed" ] && grep -q "\"version\": \"$PLAYWRIGHT_VERSION\"" "$installed"; then
    return 0
  fi
  log "installing Playwright $PLAYWRIGHT_VERSION into e2e/node_modules"
  (cd "$ROOT/e2e" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
}

# Toolchains for the components in other languages (components/activity in Python,
# components/search in TypeScript) and the host's conformance guests (host/tests/guest-python,
# host/tests/guest-js), pinned to the versions README's "Components in other languages"
# documents. Python: its own venv, so the app's .venv stays small.
COMPONENTIZE_PY_VERSION=0.17.2
SPIN_SDK_PY_VERSION=3.4.1
GUEST_VENV="$ROOT/.venv-py-guest"

setup_component_toolchains() {
  if ! "$GUEST_VENV/bin/python" -c 'import spin_sdk' 2>/dev/null \
    || ! "$GUEST_VENV/bin/componentize-py" --version 2>/dev/null | grep -q "$COMPONENTIZE_PY_VERSION"; then
    log "installing componentize-py $COMPONENTIZE_PY_VERSION + spin-sdk $SPIN_SDK_PY_VERSION into .venv-py-guest"
    python3 -m venv "$GUEST_VENV" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$GUEST_VENV"; }
    "$GUEST_VENV/bin/pip" install -q "componentize-py==$COMPONENTIZE_PY_VERSION" "spin-sdk==$SPIN_SDK_PY_VERSION"
  fi
  # The search component (TypeScript) pins componentize-js, jco and tsc in its own
  # package-lock.json.
  npm_ci "$ROOT/components/search"
}

setup_test_guests() {
  # The host's JavaScript conformance guest: componentize-js pinned by its package-lock.json.
  npm_ci "$ROOT/host/tests/guest-js"
}

# `npm ci` in DIR unless its node_modules already match its package-lock.json.
npm_ci() {
  local dir="$1"
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  if [ ! -x "$dir/node_modules/.bin/componentize-js" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    log "installing the JavaScript toolchain into ${dir#"$ROOT/"}/node_modules"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# Builds the host and every component once, in the release profile.
build_all() {
  log "building the tessera host"
  (cd "$ROOT" && cargo build --release --locked -p tessera)
  log "building the components (tessera build)"
  (cd "$ROOT" && "$CARGO_TARGET_DIR/release/tessera" build -f spin.toml)
}

# What building and running the app needs (dev.sh).
setup_app() {
  setup_rust
  setup_redis
  setup_localstripe
  setup_component_toolchains
}

# What the tests need besides (test.sh).
setup_tests() {
  setup_test_services
  setup_nginx
  setup_test_guests
  setup_k8s_tests
  setup_e2e
}
