#!/usr/bin/env bash
# A scratch PostgreSQL server for the demo and for trying the PostgreSQL item store by hand: the
# same kind of server the tests start (tests/support/postgres_server.h), kept until you remove it.
#
#   deploy/postgres-scratch.sh start DIR [PORT]  initdb into DIR on first use, start the server on
#                                                127.0.0.1:PORT (default: the port DIR used last,
#                                                else 55432), create the role and database `hier`,
#                                                print the store URI
#   deploy/postgres-scratch.sh stop DIR          stop it (DIR stays; rm -rf DIR discards it)
#
# Password (SCRAM) authentication only; the role hier's password is in DIR/hier-password (0600),
# the superuser's (postgres) in DIR/admin-password. fsync and synchronous_commit are on (the
# defaults). initdb refuses to run as root, so as root the server's files and processes belong to
# `nobody` (DIR must be reachable by it, e.g. under /tmp or /srv). The binaries come from
# $HIER_PG_BINDIR, else the newest /usr/lib/postgresql/<version>/bin, else $PATH.
set -euo pipefail

usage() {
  echo "usage: $0 start DIR [PORT] | stop DIR" >&2
  exit 2
}
[ $# -ge 2 ] || usage
command=$1
dir=$(realpath -m "$2")
port_arg=${3:-}

bin_dir=${HIER_PG_BINDIR:-}
if [ -z "$bin_dir" ]; then
  bin_dir=$(printf '%s\n' /usr/lib/postgresql/*/bin | grep -v '\*' | sort -V | tail -n 1 || true)
fi
if [ -z "$bin_dir" ] && command -v initdb > /dev/null; then
  bin_dir=$(dirname "$(command -v initdb)")
fi
if [ -z "$bin_dir" ] || [ ! -x "$bin_dir/pg_ctl" ]; then
  echo "postgres-scratch: no PostgreSQL server binaries (install postgresql or set HIER_PG_BINDIR)" \
    >&2
  exit 1
fi

cd /  # the server user may not reach the caller's folder
as_server=()
if [ "$(id -u)" -eq 0 ]; then as_server=(runuser -u nobody --); fi
pg() { "${as_server[@]}" "$bin_dir/$1" "${@:2}"; }

case "$command" in
  start)
    mkdir -p "$dir"
    if [ ${#as_server[@]} -gt 0 ]; then chown nobody:nogroup "$dir"; fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      umask 077
      head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/admin-password"
      head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/hier-password"
      cp "$dir/admin-password" "$dir/.pwfile"
      if [ ${#as_server[@]} -gt 0 ]; then chown nobody "$dir/.pwfile"; fi
      pg initdb -D "$dir/data" -U postgres --pwfile="$dir/.pwfile" --auth=scram-sha-256 \
        -E UTF8 --locale=C > "$dir/initdb.log"
      rm -f "$dir/.pwfile"
      cat >> "$dir/data/postgresql.conf" <<EOF

# deploy/postgres-scratch.sh
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = on
synchronous_commit = on
EOF
    fi
    if pg pg_ctl status -D "$dir/data" > /dev/null; then
      port=$(cat "$dir/port")
      [ -z "$port_arg" ] || [ "$port_arg" = "$port" ] ||
        { echo "postgres-scratch: already running on port $port" >&2; exit 1; }
    else
      port=${port_arg:-$(cat "$dir/port" 2>/dev/null || echo 55432)}
      echo "$port" > "$dir/port"
      pg pg_ctl start -w -t 60 -D "$dir/data" -l "$dir/server.log" -o "-p $port" > /dev/null
    fi
    export PGPASSWORD
    PGPASSWORD=$(cat "$dir/admin-password")
    psql=("$bin_dir/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1)
    role=$("${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'hier'")
    if [ -z "$role" ]; then
      "${psql[@]}" -d postgres \
        -c "CREATE ROLE hier LOGIN PASSWORD '$(cat "$dir/hier-password")'" \
        -c "CREATE DATABASE hier OWNER hier"
    fi
    echo "postgres-scratch: PostgreSQL on 127.0.0.1:$port (log: $dir/server.log)"
    echo "store URI: postgresql://hier@127.0.0.1:$port/hier  (password: $dir/hier-password)"
    ;;
  stop)
    [ -f "$dir/data/PG_VERSION" ] || { echo "postgres-scratch: no server in $dir" >&2; exit 1; }
    if pg pg_ctl status -D "$dir/data" > /dev/null; then
      pg pg_ctl stop -w -D "$dir/data" -m fast > /dev/null
    fi
    echo "postgres-scratch: stopped (rm -rf $dir to discard it)"
    ;;
  *) usage ;;
esac
