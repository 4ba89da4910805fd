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
stamp="$venv/.pins-$(printf '%s\n' "${PINS[@]}" | sha256sum | cut -c1-16)"

if [[ ! -f "$stamp" ]]; then
  command -v python3 >/dev/null || { echo "contract tests need python3 (with venv)" >&2; exit 1; }
  mkdir -p "$(dirname "$venv")"
  # Two test runs starting at once build it once.
  exec 9>"$venv.lock"
  flock 9
  if [[ ! -f "$stamp" ]]; then
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}" >&2
    touch "$stamp"
  fi
fi
echo "$venv/bin/st"
