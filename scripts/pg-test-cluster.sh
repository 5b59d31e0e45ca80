#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the test suite on a free loopback port.
#   eval "$(scripts/pg-test-cluster.sh start)"   -> exports WFM_TEST_PG_URL and WFM_TEST_PG_DIR
#   scripts/pg-test-cluster.sh stop "$WFM_TEST_PG_DIR"
# Uses Debian's PostgreSQL server binaries (installed when missing). As root, the cluster runs
# as the `postgres` system user, because initdb refuses to run as root.
set -euo pipefail

find_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

start() {
  local bindir
  if ! bindir=$(find_bin); then
    echo "installing postgresql (server binaries missing)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
    bindir=$(find_bin)
  fi
  local dir port run=()
  dir=$(mktemp -d /tmp/wfm-pg.XXXXXX)
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$dir"
    run=(runuser -u postgres --)
  fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "${run[@]}" "$bindir/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  "${run[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >&2 || { cat "$dir/server.log" >&2; exit 1; }
  echo "export WFM_TEST_PG_URL=postgres://postgres@127.0.0.1:$port/postgres"
  echo "export WFM_TEST_PG_DIR=$dir"
}

stop() {
  local dir=${1:?usage: stop DIR} bindir run=()
  bindir=$(find_bin) || exit 0
  [ "$(id -u)" = 0 ] && run=(runuser -u postgres --)
  "${run[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
