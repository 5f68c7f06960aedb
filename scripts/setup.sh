#!/usr/bin/env bash
# Set up (or refresh) the course's environment: one virtualenv outside the clone, so that it
# survives between runs. Idempotent: a warm run only checks a stamp.
#   GANLAB_VENV   where the environment lives (default ~/.cache/ganlab/venv)
#   GANLAB_NO_BROWSER=1  skip installing Debian's chromium (needed by the website test only)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GANLAB_VENV:-$HOME/.cache/ganlab/venv}"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi

# Re-install only when pyproject.toml or the clone's location changed.
STAMP="$VENV/.ganlab-stamp"
WANT="$( (cat "$ROOT/pyproject.toml"; echo "$ROOT") | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "[setup] installing ganlab and its dependencies (cold: a few minutes; torch is large)"
  "$VENV/bin/python" -m pip install -q -e "$ROOT[dev,docs,lab]" 2>&1 \
    | grep -v -e "is ignored: it is neither" -e "^\s*$" || true
  "$VENV/bin/python" -c "import ganlab, torch, torchvision, nbval" >/dev/null
  echo "$WANT" > "$STAMP"
fi

# Debian's chromium for the website's browser test (never a downloaded browser).
if [ "${GANLAB_NO_BROWSER:-0}" != "1" ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "[setup] installing Debian's chromium"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
      >/dev/null 2>&1 || echo "[setup] could not install chromium; the browser test will say so"
  else
    echo "[setup] /usr/bin/chromium missing: install Debian's chromium for the website test"
  fi
fi
echo "[setup] ready: $VENV"
