#!/usr/bin/env bash
# Refresh scripts/requirements.lock: every package `pip install -e ".[all extras]"` installs, exact versions,
# resolved by uv from pyproject.toml for CPython 3.11 on Linux. torch is left out (setup.sh installs it first,
# pinned by TORCH_SPEC) but the resolution is made against that torch version. No host names are written.
#   bash scripts/lock.sh            # then commit scripts/requirements.lock
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
UV=$(command -v uv || true)
if [ -z "$UV" ] && [ -x "$VENV/bin/uv" ]; then UV="$VENV/bin/uv"; fi
if [ -z "$UV" ]; then  # a throw-away venv just for the resolver
  tool_venv=$(mktemp -d)
  python3 -m venv "$tool_venv" && "$tool_venv/bin/python" -m pip install -q uv
  UV="$tool_venv/bin/uv"
fi
# uv ignores pip's configuration: hand it the same local find-links location pip uses (for the torch wheel)
find_links=()
for loc in $(python3 -m pip config get global.find-links 2>/dev/null || true); do find_links+=(--find-links "$loc"); done
torch_pin=$(mktemp)
trap 'rm -f "$torch_pin"' EXIT
echo "$TORCH_SPEC" >"$torch_pin"
# uv keeps the pins of an existing output file where they still fit (a new dependency does not upgrade the rest):
# start from the current lock; delete scripts/requirements.lock first to re-resolve everything to the newest
[ ! -f scripts/requirements.lock ] || cp scripts/requirements.lock scripts/requirements.lock.tmp
"$UV" pip compile pyproject.toml --all-extras --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
  --constraint "$torch_pin" "${find_links[@]}" --no-emit-package torch --no-header --quiet \
  -o scripts/requirements.lock.tmp
{
  echo "# The locked environment of vitmusic (CPython 3.11, Linux x86_64): scripts/setup.sh installs with"
  echo "#   pip install -c scripts/requirements.lock -e \".[dev]\"   after $TORCH_SPEC."
  echo "# Refresh with: bash scripts/lock.sh   (uv pip compile pyproject.toml --all-extras; torch kept out)"
  cat scripts/requirements.lock.tmp
} >scripts/requirements.lock
rm -f scripts/requirements.lock.tmp
echo "wrote scripts/requirements.lock ($(grep -c '==' scripts/requirements.lock) pins)"
