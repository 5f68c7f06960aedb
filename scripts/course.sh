#!/usr/bin/env bash
# Set up, then run the course's main job on this machine: execute every chapter's lecture
# notebook in this machine's profile (gpu with CUDA, else cpu; override with GANLAB_PROFILE)
# into runs/executed/, and build the website from the stored outputs into book/_build/html.
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
mkdir -p runs/executed
for nb in notebooks/[0-9][0-9]_*.ipynb; do
  echo "[course] executing $nb"
  "$VENV/bin/jupyter" nbconvert --to notebook --execute --ExecutePreprocessor.timeout=3600 \
    --output-dir runs/executed "$nb"
done
"$VENV/bin/python" -m ganlab.book build
echo "[course] executed notebooks: $ROOT/runs/executed"
echo "[course] website: open $ROOT/book/_build/html/index.html"
