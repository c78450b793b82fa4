# Sourced by end-to-end scripts: start_postgres starts a throwaway
# PostgreSQL 15 from the installed binaries (PG_BIN, default
# /usr/lib/postgresql/15/bin) in a new temporary directory on a free loopback
# port, as the user "postgres" (or "nobody") when run as root, which
# PostgreSQL refuses. (The directory is its own: a caller's mktemp directory
# is not traversable by that user.)
# Afterwards PG_PORT, PG_SUPERUSER and PG_SUPERUSER_PASSWORD are set, psql_su
# runs psql as the superuser, and stop_postgres stops it (call it from the
# caller's EXIT trap).
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

pg_as() {
  if [ "$(id -u)" = 0 ]; then
    local who=postgres
    id "$who" >/dev/null 2>&1 || who=nobody
    runuser -u "$who" -- "$@"
  else
    "$@"
  fi
}

start_postgres() {
  [ -x "$PG_BIN/initdb" ] || { echo "e2e: $PG_BIN/initdb missing: apt-get install postgresql-15" >&2; return 1; }
  PG_DIR=$(mktemp -d)
  chmod 0755 "$PG_DIR"
  [ "$(id -u)" = 0 ] && chown "$(id -u postgres 2>/dev/null || id -u nobody)" "$PG_DIR"
  PG_SUPERUSER=sigil_e2e
  PG_SUPERUSER_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
  local pw="$PG_DIR/pw"
  printf '%s\n' "$PG_SUPERUSER_PASSWORD" >"$pw"
  [ "$(id -u)" = 0 ] && chown "$(id -u postgres 2>/dev/null || id -u nobody)" "$pw"
  pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -U "$PG_SUPERUSER" --pwfile="$pw" -A scram-sha-256 --no-sync >"$PG_DIR/initdb.log" 2>&1 ||
    { cat "$PG_DIR/initdb.log" >&2; return 1; }
  rm -f "$pw"
  PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 60 \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $PG_DIR -c fsync=off" start >/dev/null ||
    { cat "$PG_DIR/postgres.log" >&2; return 1; }
  export PG_PORT PG_SUPERUSER PG_SUPERUSER_PASSWORD
}

psql_su() {
  PGPASSWORD=$PG_SUPERUSER_PASSWORD psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$PG_SUPERUSER" "$@"
}

stop_postgres() {
  [ -n "${PG_DIR:-}" ] || return 0
  [ -d "$PG_DIR/data" ] && pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
}
