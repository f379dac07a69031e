#!/usr/bin/env bash
# Installs perf_analyzer as Triton ships it to Python users, and prints the environment
# the perf_analyzer test reads (for `eval`):
#   - tritonclient[grpc]==2.51.0 (the newest whose perf_analyzer runs on glibc 2.36) in
#     its own virtualenv, target/tools/perf-venv (the test client's .venv pins a newer
#     tritonclient);
#   - libcudart from PyPI's nvidia-cuda-runtime-cu12 (perf_analyzer links it, GPU or not);
#   - libb64 from Debian's libb64-0d, unpacked into target/tools/libb64 (no root needed).
set -euo pipefail
cd "$(dirname "$0")/.."

tools="$PWD/target/tools"
venv="$tools/perf-venv"
b64="$tools/libb64"
mkdir -p "$tools"

if [ ! -x "$venv/bin/perf_analyzer" ]; then
  echo "== installing perf_analyzer (tritonclient 2.51.0) into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "tritonclient[grpc]==2.51.0" "nvidia-cuda-runtime-cu12==12.9.79" >&2
fi

if [ ! -e "$b64/usr/lib/x86_64-linux-gnu/libb64.so.0d" ]; then
  echo "== unpacking Debian's libb64-0d into $b64" >&2
  download=$(mktemp -d)
  if ! (cd "$download" && apt-get download libb64-0d >/dev/null 2>&1); then
    # A fresh machine may have no package lists yet.
    apt-get update -qq >/dev/null
    (cd "$download" && apt-get download libb64-0d >/dev/null)
  fi
  dpkg -x "$download"/libb64-0d_*.deb "$b64"
  rm -rf "$download"
fi

cudart=$(ls -d "$venv"/lib/python3*/site-packages/nvidia/cuda_runtime/lib)
echo "export MERCATOR_PERF_ANALYZER='$venv/bin/perf_analyzer'"
echo "export MERCATOR_PERF_ANALYZER_LIBS='$b64/usr/lib/x86_64-linux-gnu:$cudart'"
