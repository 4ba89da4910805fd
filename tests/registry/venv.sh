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
dir="$("$root/tests/support/pyvenv.sh" "$venv" "registry client tests" "${PINS[@]}")"
echo "$dir/bin/python"
