#!/usr/bin/env bash
# Set up, then run the course's main job on this machine: execute every chapter's lecture
# notebook in this machine's profile (gpu with CUDA, else cpu; override with GANLAB_PROFILE)
# into runs/executed/, and build the website from the stored outputs into book/_build/html.
# Exits non-zero if any chapter failed (each is still attempted).
#   bash scripts/course.sh --lab   opens JupyterLab on the course instead.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
GANLAB_NO_BROWSER=1 bash scripts/setup.sh
VENV="${GANLAB_VENV:-$HOME/.cache/ganlab/venv}"
if [ "${1:-}" = "--lab" ]; then
  exec "$VENV/bin/jupyter" lab --notebook-dir="$ROOT"
fi
"$VENV/bin/ganlab" info
# Each chapter in turn, with a limit per cell sized to the profile (smoke 2, cpu 20, gpu 30
# minutes; GANLAB_CELL_TIMEOUT=seconds overrides it): a cell past it is named, its kernel
# killed, and the next chapter goes on. Progress [k/N], the time of each, a summary table.
rc=0
"$VENV/bin/python" -m ganlab.runner --out runs/executed \
  ${GANLAB_CELL_TIMEOUT:+--cell-timeout "$GANLAB_CELL_TIMEOUT"} notebooks/[0-9][0-9]_*.ipynb || rc=$?
"$VENV/bin/python" -m ganlab.book build || rc=1
echo "[course] website: open $ROOT/book/_build/html/index.html (built from the notebooks' stored outputs)"
if [ "$rc" -ne 0 ]; then
  echo "[course] finished with failures (see above)"
fi
exit "$rc"
