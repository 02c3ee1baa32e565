# Sourced by the experiment scripts: a scratch PostgreSQL server (deploy/postgres-scratch.sh) for
# a cluster's store, and empty databases on it.
#
#   start_scratch_postgres DIR PORT   starts it in DIR on 127.0.0.1:PORT (output in DIR.log); sets
#                                     pg_dir and pg_password_file (the role hier's password)
#   stop_scratch_postgres             stops it (the scripts' EXIT trap)
#   new_database NAME                 drops and creates database NAME owned by hier; prints its
#                                     store URI
# Needs $root (the checkout's root folder).
start_scratch_postgres() {
  pg_dir="$1"
  pg_port="$2"
  pg_password_file="$pg_dir/hier-password"
  pg_bin="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  bash "$root/deploy/postgres-scratch.sh" start "$pg_dir" "$pg_port" >"$pg_dir.log"
}

stop_scratch_postgres() {
  [[ -n "${pg_dir:-}" ]] && bash "$root/deploy/postgres-scratch.sh" stop "$pg_dir" >/dev/null 2>&1
  return 0
}

new_database() {
  PGPASSWORD="$(cat "$pg_dir/admin-password")" PGOPTIONS='-c client_min_messages=warning' \
    "$pg_bin/psql" -X -q -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1 OWNER hier"
  echo "postgresql://hier@127.0.0.1:$pg_port/$1"
}
