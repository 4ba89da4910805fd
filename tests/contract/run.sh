#!/usr/bin/env bash
# Contract test of one running service: schemathesis against its /openapi.json
# with every check, a bounded number of examples per operation, failing on any
# finding.
#   run.sh BASE_URL [CREDENTIAL [POSITIVE_STATUSES]]
# CREDENTIAL is sent as "Authorization: Bearer CREDENTIAL" (the routes that
# declare security then also get the ignored_auth check: without it, and with
# a made-up one, they must answer 401). POSITIVE_STATUSES widens what counts as
# accepting schema-valid data (default: schemathesis's).
# CONTRACT_EXAMPLES (default 25) bounds the examples per operation;
# CONTRACT_PHASES (default explicit,generate) picks hypothesis's phases.
# CONTRACT_COVERAGE=1 adds schemathesis's experimental coverage phase (with
# the explicit phase): boundary values and undeclared methods (405 with
# Allow). Not in make test: on command-svc it dies in schemathesis itself
# (RecursionError building the command schema's cases), its cases bypass
# hooks.py (so the constraints stated in words are broken and reported), and
# e2e_contract took 3.5 min with it instead of 1.5. e2e_openapi checks every
# undeclared method of every documented path instead, the Allow value exactly.
# No U+0000 in generated strings: every document says requests must not carry
# one (refused with 400). Hypothesis's health checks on generation speed are
# off: the command schema (one of seven, fields at either of two levels) makes
# it discard many drafts, which is slow, not a finding.
set -euo pipefail

base="${1:?usage: run.sh BASE_URL [CREDENTIAL [POSITIVE_STATUSES]]}"
credential="${2:-}"
positive="${3:-}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
st="$("$here/venv.sh")"
# hooks.py: the constraints between parameters the documents state in words
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=hooks

args=(run "$base/openapi.json"
  --experimental=openapi-3.1 --experimental=positive_data_acceptance ${CONTRACT_COVERAGE:+--experimental=coverage-phase}
  --checks all --data-generation-method all
  --hypothesis-max-examples "${CONTRACT_EXAMPLES:-25}"
  --hypothesis-phases "${CONTRACT_PHASES:-explicit,generate}"
  --generation-allow-x00 false
  --hypothesis-suppress-health-check filter_too_much,too_slow
  --hypothesis-derandomize
  --experimental-no-failfast
  --request-timeout 15000
  --no-color)
[[ -n "$credential" ]] && args+=(-H "Authorization: Bearer $credential")
[[ -n "$positive" ]] && args+=(--experimental-positive-data-acceptance-allowed-statuses "$positive")
exec "$st" "${args[@]}"
