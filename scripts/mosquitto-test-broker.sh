#!/usr/bin/env bash
# Starts a throwaway Mosquitto with the dynamic-security plugin on a free loopback port.
#
#   scripts/mosquitto-test-broker.sh start [DIR]   -> prints KEY=VALUE lines (eval-able)
#   scripts/mosquitto-test-broker.sh stop DIR      -> kills it and removes DIR
#   scripts/mosquitto-test-broker.sh halt DIR      -> kills it, keeps DIR (broker outage)
#   scripts/mosquitto-test-broker.sh resume DIR    -> starts it again on the same port/state
#
# The dynsec file is initialised with the server's broker identity (WFM_EMQX_USERNAME /
# WFM_EMQX_PASSWORD, defaults admin/public), which the WFM server then uses both to manage
# users over $CONTROL/dynamic-security/v1 and as its own MQTT identity. Installs the Debian
# package when mosquitto is missing (CI machines start fresh).
#
# With WFM_TEST_MOSQUITTO_TLS=1, `start` also opens a TLS listener on a second free port with a
# throwaway CA and a server certificate for localhost / 127.0.0.1 (made with the openssl CLI),
# and prints WFM_TEST_MOSQUITTO_TLS_PORT and WFM_TEST_MOSQUITTO_CA_FILE.
set -euo pipefail

cmd="${1:-start}"
admin_user="${WFM_EMQX_USERNAME:-admin}"
admin_pass="${WFM_EMQX_PASSWORD:-public}"

find_plugin() {
    local p
    for p in /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so \
             /usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so \
             /usr/lib/mosquitto_dynamic_security.so \
             /usr/local/lib/mosquitto_dynamic_security.so; do
        [ -f "$p" ] && { echo "$p"; return 0; }
    done
    find /usr -name 'mosquitto_dynamic_security.so' 2>/dev/null | head -n1
}

ensure_installed() {
    if ! command -v mosquitto >/dev/null 2>&1 || ! command -v mosquitto_ctrl >/dev/null 2>&1; then
        echo "installing mosquitto" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2 && apt-get install -y -qq mosquitto mosquitto-clients >&2
    fi
    # The Debian package starts a system broker on 1883; tests never use it.
}

free_port() {
    python3 - <<'PY' 2>/dev/null || shuf -i 20000-60000 -n 1
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

wait_ready() {
    local dir="$1" port="$2" pid
    for _ in $(seq 1 100); do
        if mosquitto_ctrl -h 127.0.0.1 -p "$port" -u "$admin_user" -P "$admin_pass" dynsec getDefaultACLAccess >/dev/null 2>&1; then
            pid="$(pgrep -n -f "mosquitto -c $dir/mosquitto.conf" || true)"
            echo "$pid" >"$dir/pid"
            echo "WFM_TEST_MOSQUITTO_DIR=$dir"
            echo "WFM_TEST_MOSQUITTO_PORT=$port"
            echo "WFM_TEST_MOSQUITTO_PID=$pid"
            echo "WFM_MQTT_URL=mqtt://127.0.0.1:$port"
            if [ -f "$dir/tls_port" ]; then
                echo "WFM_TEST_MOSQUITTO_TLS_PORT=$(cat "$dir/tls_port")"
                echo "WFM_TEST_MOSQUITTO_CA_FILE=$dir/tls/ca.crt"
            fi
            return 0
        fi
        sleep 0.1
    done
    echo "mosquitto did not come up; log:" >&2
    cat "$dir/mosquitto.log" >&2 || true
    return 1
}

# A throwaway CA and a server certificate (localhost, 127.0.0.1) signed by it, in $1.
make_certs() {
    local d="$1"
    command -v openssl >/dev/null 2>&1 || {
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2 && apt-get install -y -qq openssl >&2
    }
    mkdir -p "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=WFM Test CA" -keyout "$d/ca.key" -out "$d/ca.crt" >/dev/null 2>&1
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=localhost" -keyout "$d/server.key" -out "$d/server.csr" >/dev/null 2>&1
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$d/ext.cnf"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
        -extfile "$d/ext.cnf" -out "$d/server.crt" >/dev/null 2>&1
    chmod 0644 "$d/ca.crt" "$d/server.crt"
}

kill_broker() {
    local dir="$1" pid
    [ -f "$dir/pid" ] || return 0
    pid="$(cat "$dir/pid")"
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

case "$cmd" in
start)
    ensure_installed
    dir="${2:-$(mktemp -d /tmp/wfm-mosquitto.XXXXXX)}"
    mkdir -p "$dir"
    plugin="$(find_plugin)"
    [ -n "$plugin" ] || { echo "mosquitto dynamic-security plugin not found" >&2; exit 1; }
    port="$(free_port)"
    rm -f "$dir/dynsec.json"
    mosquitto_ctrl dynsec init "$dir/dynsec.json" "$admin_user" "$admin_pass" >/dev/null
    cat >"$dir/mosquitto.conf" <<CONF
per_listener_settings false
allow_anonymous false
persistence false
log_dest file $dir/mosquitto.log
log_type error
log_type warning
log_type notice
log_type information
connection_messages true
listener $port 127.0.0.1
plugin $plugin
plugin_opt_config_file $dir/dynsec.json
CONF
    if [ "${WFM_TEST_MOSQUITTO_TLS:-0}" = 1 ]; then
        make_certs "$dir/tls"
        tls_port="$(free_port)"
        while [ "$tls_port" = "$port" ]; do tls_port="$(free_port)"; done
        cat >>"$dir/mosquitto.conf" <<CONF
listener $tls_port 127.0.0.1
cafile $dir/tls/ca.crt
certfile $dir/tls/server.crt
keyfile $dir/tls/server.key
CONF
        echo "$tls_port" >"$dir/tls_port"
    fi
    # Started as root, mosquitto drops to the mosquitto user, which must own the dynsec file
    # and its folder, or every login fails with CONNACK 135.
    if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
        chown -R mosquitto: "$dir"
        chmod 0700 "$dir"
    fi
    echo "$port" >"$dir/port"
    mosquitto -c "$dir/mosquitto.conf" -d
    wait_ready "$dir" "$port"
    ;;
halt)
    dir="${2:?usage: $0 halt DIR}"
    kill_broker "$dir"
    ;;
resume)
    dir="${2:?usage: $0 resume DIR}"
    mosquitto -c "$dir/mosquitto.conf" -d
    wait_ready "$dir" "$(cat "$dir/port")"
    ;;
stop)
    dir="${2:?usage: $0 stop DIR}"
    kill_broker "$dir"
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start [DIR] | stop DIR | halt DIR | resume DIR" >&2
    exit 2
    ;;
esac
