#!/usr/bin/env bash
# HTTP benchmark: requests/s and latency percentiles for GET /api/v1/system/health and
# GET /api/v1/auth/session (with a valid bearer token), against a release build on loopback,
# SQLite backend. Load generator: wrk (Debian package, installed when missing).
#   scripts/bench-http.sh [duration_seconds=10] [connections=64]
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-10}
conns=${2:-64}
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
cargo build --release -p wfm --bin wfm >&2
tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
WFM_BIND=127.0.0.1:$port WFM_DATA_DIR=$tmp WFM_ENABLE_MQTT_SERVICES=false WFM_LOG=warn \
  target/release/wfm >"$tmp/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/api/v1/system/health" >/dev/null && break; sleep 0.1; done
token=$(curl -fs -X POST -H 'content-type: application/json' -d '{"password":"bench-password"}' \
  "http://127.0.0.1:$port/api/v1/auth/setup" | python3 -c 'import sys,json; print(json.load(sys.stdin)["data"]["access_token"])')
run() {
  local name=$1; shift
  echo "== $name ($dur s, $conns connections, 2 wrk threads, same 2-core machine as the server)"
  wrk -t2 -c"$conns" -d"${dur}s" --latency "$@" | grep -E 'Requests/sec|Latency  |50%|90%|99%|Non-2xx'
}
run "GET /api/v1/system/health" "http://127.0.0.1:$port/api/v1/system/health"
run "GET /api/v1/auth/session" -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/auth/session"
