#!/usr/bin/env bash
# The whole test suite, set-up included: venv, install, browser for the browser tests, lint, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh test
if [ -f scripts/install_browser.sh ]; then bash scripts/install_browser.sh; fi
echo "[failwidgets] ruff format --check and ruff check"
.venv/bin/ruff format --check --quiet .
.venv/bin/ruff check --quiet .
exec .venv/bin/python -m pytest "$@"
