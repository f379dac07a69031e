#!/usr/bin/env bash
# A throwaway Spark standalone cluster on 127.0.0.1 (a master and one worker) from the
# pyspark wheel in .venv (it bundles Spark; Java 17 runs it), for the test of
# `mercator features history --engine spark`. Prints the master's URL.
#   scripts/spark.sh        start (idempotent)
#   scripts/spark.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."

port=${SPARK_MASTER_PORT:-55437}
dir="${TMPDIR:-/tmp}/mercator-spark-$port"
spark_home=$(.venv/bin/python -c "import os, pyspark; print(os.path.dirname(pyspark.__file__))")

stop() {
  for pid in "$dir"/*.pid; do
    [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
  done
  rm -f "$dir"/*.pid
}

if [ "${1:-start}" = stop ]; then
  stop
  exit 0
fi

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Spark 4 runs on Java 17 or later: the image has it; a machine without it gets Debian's.
if ! command -v java >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "== installing Java 17 for Spark (Debian package openjdk-17-jre-headless)" >&2
  (apt-get -o DPkg::Lock::Timeout=600 update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      --no-install-recommends openjdk-17-jre-headless) >/dev/null
fi

mkdir -p "$dir"
if ! listening "$port"; then
  stop
  export SPARK_HOME="$spark_home" SPARK_LOCAL_IP=127.0.0.1 SPARK_LOG_DIR="$dir" SPARK_WORKER_DIR="$dir/work"
  "$spark_home/bin/spark-class" org.apache.spark.deploy.master.Master \
    --host 127.0.0.1 --port "$port" --webui-port $((port + 1)) >"$dir/master.log" 2>&1 &
  echo $! >"$dir/master.pid"
  for _ in $(seq 1 300); do listening "$port" && break; sleep 0.1; done
  "$spark_home/bin/spark-class" org.apache.spark.deploy.worker.Worker \
    --host 127.0.0.1 --webui-port $((port + 2)) --cores 2 --memory 2g \
    "spark://127.0.0.1:$port" >"$dir/worker.log" 2>&1 &
  echo $! >"$dir/worker.pid"
  # The worker has registered when the master says so.
  for _ in $(seq 1 300); do
    grep -q "Registering worker" "$dir/master.log" 2>/dev/null && break
    sleep 0.1
  done
  grep -q "Registering worker" "$dir/master.log" || {
    echo "the Spark worker did not register; see $dir/*.log" >&2
    exit 1
  }
fi
echo "spark://127.0.0.1:$port"
