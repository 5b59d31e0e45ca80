#!/usr/bin/env bash
# Builds everything (plugins for wasm32-wasip2, the server in release) and runs WFM on the
# embedded default: SQLite under ./data, no broker needed (MQTT services can be enabled with
# WFM_* variables; see README). Extra arguments are passed to the server binary.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi
[ -x scripts/build-plugins.sh ] && scripts/build-plugins.sh
cargo build --release -p wfm --bin wfm
target_dir="${CARGO_TARGET_DIR:-target}"
export WFM_PLUGIN_DIR="${WFM_PLUGIN_DIR:-$target_dir/plugins}"
exec "$target_dir/release/wfm" "$@"
