#!/usr/bin/env bash
# Starts a throwaway Redis on 127.0.0.1:${REDIS_PORT:-55434} for the tests (no
# persistence), installing redis-server from Debian's packages when the machine lacks it
# and we are root. Prints its URL. Stop it with: scripts/redis.sh stop
# With openssl, the same server also speaks TLS on ${REDIS_TLS_PORT:-55435}, with a
# certificate from a throwaway CA in $TMPDIR/mercator-redis-PORT (ca.crt) and client
# certificates required (client.crt, client.key).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
port=${REDIS_PORT:-55434}
tls_port=${REDIS_TLS_PORT:-55435}
data=${TMPDIR:-/tmp}/mercator-redis-$port

if [ "${1:-}" = stop ]; then
  if [ -f "$data/redis.pid" ]; then kill "$(cat "$data/redis.pid")" 2>/dev/null || true; fi
  exit 0
fi
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "redis-server is not installed (apt-get install redis-server)" >&2
    exit 1
  fi
  echo "installing redis-server" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server) >&2
fi
if [ -f "$data/redis.pid" ]; then kill "$(cat "$data/redis.pid")" 2>/dev/null || true; sleep 0.2; fi
rm -rf "$data"
mkdir -p "$data"
tls=()
if command -v openssl >/dev/null 2>&1; then
  "$here/test_ca.sh" "$data" "mercator test Redis CA"
  tls=(--tls-port "$tls_port" --tls-cert-file "$data/server.crt" --tls-key-file "$data/server.key"
    --tls-ca-cert-file "$data/ca.crt" --tls-auth-clients yes)
fi
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no "${tls[@]}" \
  --dir "$data" --pidfile "$data/redis.pid" --daemonize yes --logfile "$data/redis.log" >&2
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
echo "redis://127.0.0.1:$port"
