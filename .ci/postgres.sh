#!/usr/bin/env bash
# Starts a throwaway PostgreSQL on 127.0.0.1:${PGPORT:-55432} for the tests, installing it
# from Debian's packages when the machine lacks it. Prints the admin URL on stdout.
# Stop it with: .ci/postgres.sh stop
set -euo pipefail
port=${PGPORT:-55432}
data=/tmp/mercator-pg-$port

pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ "${1:-}" = stop ]; then
  [ -n "$pgbin" ] && runuser -u postgres -- "$pgbin/pg_ctl" -D "$data" stop -m immediate >/dev/null 2>&1 || true
  exit 0
fi
if [ -z "$pgbin" ] || [ ! -x "$pgbin/initdb" ]; then
  echo "installing postgresql" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
  pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres

runuser -u postgres -- "$pgbin/pg_ctl" -D "$data" stop -m immediate >/dev/null 2>&1 || true
rm -rf "$data"
mkdir -p "$data"
chown postgres "$data"
runuser -u postgres -- "$pgbin/initdb" -D "$data" -A trust -U postgres >/dev/null
runuser -u postgres -- "$pgbin/pg_ctl" -D "$data" -l "$data/server.log" -w \
  -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >&2
echo "postgres://postgres@127.0.0.1:$port/postgres"
