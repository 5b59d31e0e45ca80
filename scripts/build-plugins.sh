#!/usr/bin/env bash
# Builds the WFM plugins from source for wasm32-wasip2 (release) and copies the components to
# the directory the server loads by default (target/plugins, see WFM_PLUGIN_DIR).
#
#   scripts/build-plugins.sh               # first-party plugins + the example plugin
#   scripts/build-plugins.sh --fixtures    # also the hostile test fixtures (into target/plugin-fixtures)
#   scripts/build-plugins.sh --out DIR     # copy the plugins into DIR instead of target/plugins
#
# Plugins are size-optimised with LTO; the settings are passed as environment so they apply
# to this wasm build only and never to the host's own release profile.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
out="$target_dir/plugins"
fixtures=0
while [ $# -gt 0 ]; do
    case "$1" in
        --fixtures) fixtures=1 ;;
        --out) shift; out="$1" ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

plugins=(wfm-plugin-awg-params wfm-example-hello-plugin)
fixture_crates=(wfm-fixture-loop wfm-fixture-memory-bomb wfm-fixture-trap wfm-fixture-undeclared-capability
                wfm-fixture-oversized-output wfm-fixture-wrong-abi wfm-fixture-effects)

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    echo "installing the wasm32-wasip2 target" >&2
    rustup target add wasm32-wasip2
fi

export CARGO_PROFILE_RELEASE_OPT_LEVEL=s
export CARGO_PROFILE_RELEASE_LTO=true
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
export CARGO_PROFILE_RELEASE_STRIP=true
export CARGO_PROFILE_RELEASE_PANIC=unwind

build() {
    local args=()
    for p in "$@"; do args+=(-p "$p"); done
    (cd "$root" && cargo build --release --target wasm32-wasip2 --target-dir "$target_dir" "${args[@]}")
}

copy() {
    local dest="$1"; shift
    mkdir -p "$dest"
    for p in "$@"; do
        local file="$target_dir/wasm32-wasip2/release/${p//-/_}.wasm"
        # Copy then rename: test processes may be reading the previous copy right now, and a
        # rename swaps the file atomically where an in-place overwrite would hand them a
        # truncated component.
        cp -f "$file" "$dest/.$(basename "$file").$$"
        mv -f "$dest/.$(basename "$file").$$" "$dest/$(basename "$file")"
        echo "  $dest/$(basename "$file") ($(wc -c < "$file") bytes)"
    done
}

build "${plugins[@]}"
echo "plugins:"
copy "$out" "${plugins[@]}"
if [ "$fixtures" = 1 ]; then
    build "${fixture_crates[@]}"
    echo "fixtures:"
    copy "$target_dir/plugin-fixtures" "${fixture_crates[@]}"
fi
