#!/usr/bin/env bash
# Starts a throwaway Redis on 127.0.0.1:${REDIS_PORT:-55434} for the tests (no
# persistence), installing redis-server from Debian's packages when the machine lacks it
# and we are root. Prints its URL. Stop it with: scripts/redis.sh stop
set -euo pipefail
port=${REDIS_PORT:-55434}
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
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$data" --pidfile "$data/redis.pid" --daemonize yes --logfile "$data/redis.log" >&2
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
echo "redis://127.0.0.1:$port"
