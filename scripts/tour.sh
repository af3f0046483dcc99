#!/usr/bin/env bash
# Open the tour of the demo world in Voila (widgets served locally, no internet needed); prints the URL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh notebook
port="${FAILWIDGETS_PORT:-8866}"
echo "[failwidgets] preparing the demo world (first run trains nothing: weights ship with the package)"
.venv/bin/python -c "import failwidgets.demo as d; d.load(progress=True)"
echo "[failwidgets] the tour will be at: http://localhost:${port}/"
# Notebook 7's lab extension is of no use to Voila and fails to load there: skip it
exec .venv/bin/voila notebooks/00_tour.ipynb --port="$port" --no-browser --Voila.ip=0.0.0.0 \
  "--VoilaConfiguration.extension_denylist=['@jupyter-notebook/lab-extension']"
