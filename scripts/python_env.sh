#!/usr/bin/env bash
# The Python side of the tests, installed or brought up to date: .venv with the test
# clients (tritonclient, KServe's client, moto), the Python package (python/) with what
# its exporters' tests train (xgboost, statsmodels, torch), and perf_analyzer in its own
# virtualenv (scripts/perf_analyzer.sh). Network and disk bound: .ci/run starts it in
# the background while clippy compiles, and scripts/test.sh runs it again (then quick).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv for the Python tests and the S3 test server" >&2
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r server/tests/python/requirements.txt \
  -r python/requirements-test.txt ./python
# pip builds the package in place: leave the tree as it was.
rm -rf python/build python/src/*.egg-info
scripts/perf_analyzer.sh >/dev/null
