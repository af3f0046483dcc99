#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install failwidgets into it.
# Usage: scripts/setup_env.sh EXTRAS   (e.g. "test" or "notebook")
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-notebook}"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[failwidgets] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=".venv/.failwidgets-installed-$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "[failwidgets] installing failwidgets[$extras] (first run: torch is large, this takes a few minutes)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[$extras]"
  touch "$stamp"
fi
