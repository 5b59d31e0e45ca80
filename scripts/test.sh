#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need (wasm target,
# cargo-nextest, Mosquitto, wireguard-tools, OpenSSL headers, PostgreSQL server), builds the plugins from
# source, starts a throwaway PostgreSQL cluster, and runs every test against SQLite and
# PostgreSQL with a real broker and real compiled plugins.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

log "checking tools"
missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto mosquitto-clients)
command -v wg >/dev/null 2>&1 || missing+=(wireguard-tools)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
# The MQTT TLS stack is native-tls, i.e. OpenSSL: headers and pkg-config to build against it.
pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev pkg-config)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  sudo_cmd=(); [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  log "adding the wasm32-wasip2 target"
  rustup target add wasm32-wasip2
fi
command -v cargo-nextest >/dev/null 2>&1 || cargo install cargo-nextest --locked

if [ -x scripts/build-plugins.sh ]; then
  log "building plugins (wasm32-wasip2)"
  scripts/build-plugins.sh --fixtures
fi

log "starting a throwaway PostgreSQL"
eval "$(scripts/pg-test-cluster.sh start)"
trap 'scripts/pg-test-cluster.sh stop "$WFM_TEST_PG_DIR"' EXIT
export WFM_TEST_PG_URL

log "running tests"
# Default members only: plugins and fixtures are wasm32 crates built above, not host tests.
cargo nextest run --no-fail-fast --test-threads 4 "$@"
