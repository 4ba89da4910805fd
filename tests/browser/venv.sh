#!/usr/bin/env bash
# Creates (once) the Python virtualenv holding Selenium, pinned, under
# <repo>/.local/browser-venv (BROWSER_VENV overrides), and prints the path of
# its python. Idempotent and non-interactive, like tests/contract/venv.sh.
# The browser and its driver are Debian's (chromium, chromium-driver: see
# deploy/local/deps.sh); Selenium is given the driver's path, so it never
# downloads one. Needs python3 with venv and PyPI the first time.
set -euo pipefail

# Selenium with its dependencies, all pinned (4.27.1: later releases ask for a
# certifi newer than some package indexes carry).
PINS=(selenium==4.27.1 certifi==2026.10.19.post1 urllib3==2.8.0 trio==0.35.0 trio-websocket==0.12.2
      websocket-client==1.9.2 typing_extensions==4.16.0 attrs==26.1.0 h11==0.16.0 idna==3.20
      outcome==1.3.0.post0 PySocks==1.7.1 sniffio==1.3.1 sortedcontainers==2.4.0 wsproto==1.3.2)
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${BROWSER_VENV:-$root/.local/browser-venv}"
dir="$("$root/tests/support/pyvenv.sh" "$venv" "browser tests" "${PINS[@]}")"
echo "$dir/bin/python"
