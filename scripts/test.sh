#!/usr/bin/env bash
# Runs every test: Rust unit, parity and integration tests, the registry against a real
# PostgreSQL, metrics through promtool, and the tritonclient (Python) client test.
# Installs what the tests need: a virtualenv with tritonclient under .venv, PostgreSQL
# and promtool from Debian's packages when run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import tritonclient.grpc, numpy" 2>/dev/null; then
  echo "== creating .venv with the Python test client" >&2
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r server/tests/python/requirements.txt
fi
export MERCATOR_PYTHON="$PWD/.venv/bin/python"

if ! command -v promtool >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "== installing promtool (Debian package prometheus)" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) >/dev/null
fi

echo "== starting a throwaway PostgreSQL" >&2
MERCATOR_TEST_POSTGRES_URL=$(scripts/postgres.sh)
export MERCATOR_TEST_POSTGRES_URL
trap 'scripts/postgres.sh stop' EXIT

cargo test --workspace --all-targets
