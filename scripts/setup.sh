#!/usr/bin/env bash
# One-time environment set-up for vitmusic (called by `make demo` / `make test`; safe to re-run).
# - system packages (ffmpeg, fluidsynth + GM soundfont, chromium and nginx for the browser tests) through apt-get as root
# - a virtualenv in $VENV (default .venv) with CPU torch installed FIRST (so nothing pulls a CUDA build), then
#   vitmusic with its dev extras at exactly the locked versions:
#       pip install -c scripts/requirements.lock -e ".[dev]"
#   and the few packages that must be installed without their declared dependencies
#   (scripts/requirements-nodeps.txt, pinned), then a check that the venv matches the lock.
# LOCK=none installs the newest releases allowed by pyproject.toml instead (CI's second environment).
# REFEREES=ccby,nc,gpl (or all) adds the optional trained referees of `vitmusic evaluate`, each named by its
# licence (docs/referees.md): ccby = BeatNet (CC BY 4.0), nc = madmom's models (CC BY-NC-SA, non-commercial),
# gpl = vibenet (GPL-3.0): their pyproject extras at the locked versions, then the --no-deps pins of
# scripts/requirements-referees-<name>.txt. Nothing else changes version.
# Refresh the lock after changing dependencies: bash scripts/lock.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
LOCK=${LOCK:-scripts/requirements.lock}
NODEPS=scripts/requirements-nodeps.txt
REFEREES=${REFEREES:-}
[ "$REFEREES" != all ] || REFEREES=ccby,nc,gpl
extras=dev
referee_nodeps=()
for r in ${REFEREES//,/ }; do
  case "$r" in
    ccby|nc|gpl) extras="$extras,referees-$r"
                 [ ! -f "scripts/requirements-referees-$r.txt" ] || referee_nodeps+=("scripts/requirements-referees-$r.txt") ;;
    *) echo "[setup] unknown REFEREES entry '$r' (use ccby, nc, gpl or all)" >&2; exit 2 ;;
  esac
done
APT_PACKAGES="ffmpeg fluidsynth fluid-soundfont-gm chromium chromium-driver nginx-light"

missing=""
for bin in ffmpeg fluidsynth chromium chromedriver nginx; do command -v "$bin" >/dev/null 2>&1 || missing="$missing $bin"; done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing system packages: $APT_PACKAGES"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $APT_PACKAGES >/dev/null
  else
    echo "[setup] note: missing system tools:$missing. vitmusic works without them (PyAV muxes, the built-in"
    echo "[setup]       synthesizer renders), but FluidSynth rendering needs them and the browser listening-test"
    echo "[setup]       tests need chromium + chromedriver (nginx for the TLS-proxy one). As root: apt-get install $APT_PACKAGES"
  fi
fi

# re-install whenever what the venv is built from changes (pyproject, lock, --no-deps pins, torch, mode)
if [ "$LOCK" = "none" ]; then mode="newest"; else mode="locked"; fi
want=$({ cat pyproject.toml; [ ! -f "$NODEPS" ] || cat "$NODEPS"; [ "$mode" != locked ] || cat "$LOCK"
         for f in "${referee_nodeps[@]}"; do cat "$f"; done
         echo "$TORCH_SPEC $mode $extras"; } | sha256sum | cut -d' ' -f1)
stamp="$VENV/.vitmusic-installed"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
echo "[setup] installing $TORCH_SPEC (first, so no CUDA build is pulled in)"
"${pip[@]}" install -q "$TORCH_SPEC"
if [ "$mode" = locked ]; then
  echo "[setup] installing vitmusic and its dependencies at the versions of $LOCK"
  "${pip[@]}" install -q -c "$LOCK" -e ".[$extras]"
else
  echo "[setup] installing vitmusic and the newest releases of its dependencies (no lock)"
  # (meant for a fresh venv: an existing one keeps what it has; no --upgrade, which would replace torch)
  "${pip[@]}" install -q -e ".[$extras]"
fi
if [ -f "$NODEPS" ]; then
  echo "[setup] installing the pinned --no-deps packages of $NODEPS"
  "${pip[@]}" install -q --no-deps -r "$NODEPS"
fi
for f in "${referee_nodeps[@]}"; do
  echo "[setup] installing the pinned --no-deps referees of $f"
  "${pip[@]}" install -q --no-deps -r "$f"
done
if [ "$mode" = locked ]; then
  "$VENV/bin/python" scripts/check_lock.py "$LOCK" "$NODEPS" "${referee_nodeps[@]}"
fi
echo "$want" >"$stamp"
echo "[setup] ready: $VENV ($mode${REFEREES:+, referees: $REFEREES})"
