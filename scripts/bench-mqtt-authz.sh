#!/usr/bin/env bash
# Benchmark of the EMQX authz callback (POST /api/internal/emqx/authz) on loopback against a
# release build: decisions/s and latency percentiles with wrk (installed when missing).
# A config with one dynamic node is created and bound through the API first, so the measured
# decision is a real "allow" (own topic) served from the in-memory engine.
#   scripts/bench-mqtt-authz.sh [duration_seconds=10] [connections=32]
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-10}
conns=${2:-32}
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
[ "${SKIP_BUILD:-}" = 1 ] || cargo build --release -p wfm --bin wfm >&2
tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# EMQX and the broker are unreachable on purpose: authz must not depend on them.
WFM_BIND=127.0.0.1:$port WFM_DATA_DIR=$tmp WFM_LOG=warn WFM_MQTT_URL=mqtt://127.0.0.1:9 \
  WFM_EMQX_API_BASE_URL=http://127.0.0.1:9 WFM_EMQX_AUTHZ_SHARED_KEY=bench-key \
  target/release/wfm >"$tmp/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -fs "$base/api/v1/system/health" >/dev/null && break; sleep 0.1; done
j() { python3 -c "import sys,json; d=json.load(sys.stdin); print($1)"; }
token=$(curl -fs -X POST -H 'content-type: application/json' -d '{"password":"bench-password"}' "$base/api/v1/auth/setup" | j 'd["data"]["access_token"]')
auth=(-H "Authorization: Bearer $token" -H 'content-type: application/json')
cfg=$(curl -fs -X POST "${auth[@]}" -d '{"name":"bench"}' "$base/api/v1/configs" | j 'd["data"]["id"]')
node=$(curl -fs -X POST "${auth[@]}" -d '{"name":"n1","node_type":"dynamic"}' "$base/api/v1/configs/$cfg/nodes" | j 'd["data"]["id"]')
bt=$(curl -fs -X POST "${auth[@]}" -d '{}' "$base/api/v1/configs/$cfg/nodes/$node/bind-command" | j 'd["data"]["token"]')
curl -fs -X POST -H 'content-type: application/json' -d "{\"token\":\"$bt\"}" "$base/api/client/v1/bind" >/dev/null
body="{\"username\":\"$node\",\"clientid\":\"wfm-$node\",\"topic\":\"wfm/$cfg/$node/control\",\"action\":\"subscribe\"}"
echo "check: $(curl -fs -X POST -H 'x-wfm-internal-key: bench-key' -H 'content-type: application/json' -d "$body" "$base/api/internal/emqx/authz")"
cat >"$tmp/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["content-type"] = "application/json"
wrk.headers["x-wfm-internal-key"] = "bench-key"
LUA
echo "== POST /api/internal/emqx/authz ($dur s, $conns connections, 2 wrk threads, same 2-core machine as the server)"
wrk -t2 -c"$conns" -d"${dur}s" --latency -s "$tmp/post.lua" "$base/api/internal/emqx/authz" | grep -E 'Requests/sec|Latency  |50%|90%|99%|Non-2xx|requests in'
