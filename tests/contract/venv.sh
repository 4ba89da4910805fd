#!/usr/bin/env bash
# Creates (once) the Python virtualenv holding the contract tester, pinned, under
# <repo>/.local/contract-venv (CONTRACT_VENV overrides), and prints the path of
# its `st` command. Idempotent and non-interactive: a venv with the pinned set
# installed is reused; a missing or half-made one is (re)built. Needs python3
# with venv and the network to PyPI the first time.
set -euo pipefail

# schemathesis 3.39.16 with the hypothesis of its time: later hypothesis
# releases removed an API it uses ("'many' object has no attribute 'more'").
PINS=(schemathesis==3.39.16 hypothesis==6.131.0)
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${CONTRACT_VENV:-$root/.local/contract-venv}"
dir="$("$root/tests/support/pyvenv.sh" "$venv" "contract tests" "${PINS[@]}")"
echo "$dir/bin/st"
