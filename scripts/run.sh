#!/usr/bin/env bash
# Builds everything (plugins for wasm32-wasip2, the server in release) and runs WFM on the
# embedded default: SQLite under ./data, no broker needed (MQTT services can be enabled with
# WFM_* variables; see README). Extra arguments are passed to the server binary.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi
# The MQTT TLS stack is native-tls (OpenSSL): the build needs its headers and pkg-config.
if ! pkg-config --exists openssl 2>/dev/null; then
  sudo_cmd=(); [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends libssl-dev pkg-config >/dev/null
fi
[ -x scripts/build-plugins.sh ] && scripts/build-plugins.sh
cargo build --release -p wfm --bin wfm
target_dir="${CARGO_TARGET_DIR:-target}"
export WFM_PLUGIN_DIR="${WFM_PLUGIN_DIR:-$target_dir/plugins}"
exec "$target_dir/release/wfm" "$@"
