#!/usr/bin/env bash
# Creates (once) the Python virtualenv holding the official Confluent registry
# client, pinned, under <repo>/.local/registry-venv (REGISTRY_VENV overrides),
# and prints the path of its python. Idempotent and non-interactive, like
# tests/contract/venv.sh. Needs python3 with venv and PyPI the first time.
set -euo pipefail

# confluent-kafka's SchemaRegistryClient speaks HTTP through requests (its
# "schemaregistry" extra); the wheel carries its own librdkafka.
PINS=(confluent-kafka==2.6.1 requests==2.32.3)
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${REGISTRY_VENV:-$root/.local/registry-venv}"
stamp="$venv/.pins-$(printf '%s\n' "${PINS[@]}" | sha256sum | cut -c1-16)"

if [[ ! -f "$stamp" ]]; then
  command -v python3 >/dev/null || { echo "registry client tests need python3 (with venv)" >&2; exit 1; }
  mkdir -p "$(dirname "$venv")"
  exec 9>"$venv.lock"
  flock 9
  if [[ ! -f "$stamp" ]]; then
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}" >&2
    touch "$stamp"
  fi
fi
echo "$venv/bin/python"
