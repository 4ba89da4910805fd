#!/usr/bin/env bash
# pyvenv.sh VENV_DIR WHAT PIN... : creates (once) a Python virtualenv at
# VENV_DIR with exactly the pinned packages PIN... installed, and prints
# VENV_DIR. Idempotent and non-interactive: a venv holding this pin set (a
# stamp names its hash) is reused; a missing, half-made or differently pinned
# one is (re)built. Two test runs starting at once build it once (flock).
# WHAT names the tests that need it, for the error when python3 is missing.
# Needs python3 with venv, and PyPI the first time. Used by the venv.sh of
# tests/contract (schemathesis), tests/registry (the Confluent client) and
# tests/browser (Selenium).
set -euo pipefail

venv="${1:?usage: pyvenv.sh VENV_DIR WHAT PIN...}"
what="${2:?usage: pyvenv.sh VENV_DIR WHAT PIN...}"
shift 2
stamp="$venv/.pins-$(printf '%s\n' "$@" | sha256sum | cut -c1-16)"

if [[ ! -f "$stamp" ]]; then
  command -v python3 >/dev/null || { echo "$what need python3 (with venv)" >&2; exit 1; }
  mkdir -p "$(dirname "$venv")"
  exec 9>"$venv.lock"
  flock 9
  if [[ ! -f "$stamp" ]]; then
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
    touch "$stamp"
  fi
fi
echo "$venv"
