#!/usr/bin/env bash
# One-time environment set-up for vitmusic (called by `make demo` / `make test`; safe to re-run).
# - system packages (ffmpeg, fluidsynth + GM soundfont) through apt-get when run as root
# - a virtualenv in $VENV (default .venv) with CPU torch installed FIRST (so nothing pulls a CUDA build),
#   then vitmusic itself with its dev extras.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
APT_PACKAGES="ffmpeg fluidsynth fluid-soundfont-gm chromium chromium-driver"

missing=""
for bin in ffmpeg fluidsynth chromium chromedriver; do command -v "$bin" >/dev/null 2>&1 || missing="$missing $bin"; done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing system packages: $APT_PACKAGES"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $APT_PACKAGES >/dev/null
  else
    echo "[setup] note: missing system tools:$missing. vitmusic works without them (PyAV muxes, the built-in"
    echo "[setup]       synthesizer renders), but FluidSynth rendering needs them and the browser listening-test"
    echo "[setup]       test needs chromium + chromedriver. As root: apt-get install $APT_PACKAGES"
  fi
fi

stamp="$VENV/.vitmusic-installed"
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
echo "[setup] installing $TORCH_SPEC (first, so no CUDA build is pulled in)"
"$VENV/bin/python" -m pip install -q "$TORCH_SPEC"
echo "[setup] installing vitmusic and its dependencies"
"$VENV/bin/python" -m pip install -q -e ".[dev]"
touch "$stamp"
echo "[setup] ready: $VENV"
