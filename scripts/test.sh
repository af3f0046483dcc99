#!/usr/bin/env bash
# The whole test suite, set-up included: venv, install, browser for the browser tests, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh test
if [ -f scripts/install_browser.sh ]; then bash scripts/install_browser.sh; fi
exec .venv/bin/python -m pytest "$@"
