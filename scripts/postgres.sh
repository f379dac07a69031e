#!/usr/bin/env bash
# Starts a throwaway PostgreSQL on 127.0.0.1:${PGPORT:-55432} for the tests, installing it
# from Debian's packages when the machine lacks it and we are root. Prints the admin URL.
# Stop it with: scripts/postgres.sh stop
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
port=${PGPORT:-55432}
data=${TMPDIR:-/tmp}/mercator-pg-$port

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true; }
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pgbin=$(find_bin)
if [ "${1:-}" = stop ]; then
  [ -n "$pgbin" ] && as_pg "$pgbin/pg_ctl" -D "$data" stop -m immediate >/dev/null 2>&1 || true
  exit 0
fi
if [ -z "$pgbin" ] || [ ! -x "$pgbin/initdb" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "PostgreSQL is not installed (apt-get install postgresql)" >&2
    exit 1
  fi
  echo "installing postgresql" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
  pgbin=$(find_bin)
fi
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
fi

as_pg "$pgbin/pg_ctl" -D "$data" stop -m immediate >/dev/null 2>&1 || true
rm -rf "$data"
mkdir -p "$data"
[ "$(id -u)" = 0 ] && chown postgres "$data"
as_pg "$pgbin/initdb" -D "$data" -A trust -U postgres >/dev/null
# TLS as well as plain connections: a throwaway CA ($data/ca.crt, which the tests trust
# with sslmode=verify-full&sslrootcert=…) signs a certificate for 127.0.0.1.
tls=()
if command -v openssl >/dev/null 2>&1; then
  "$here/test_ca.sh" "$data" "mercator test PostgreSQL CA"
  [ "$(id -u)" = 0 ] && chown postgres "$data/server.key" "$data/server.crt"
  tls=(-c ssl=on -c "ssl_cert_file=$data/server.crt" -c "ssl_key_file=$data/server.key")
fi
as_pg "$pgbin/pg_ctl" -D "$data" -l "$data/server.log" -w \
  -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 ${tls[*]}" start >&2
echo "postgres://postgres@127.0.0.1:$port/postgres"
