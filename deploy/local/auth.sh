#!/usr/bin/env bash
# Local credentials: authentication is on by default, and `make run` makes it easy.
#
#   deploy/local/auth.sh env         print the AUTH_* settings the local services run with
#   deploy/local/auth.sh keys        make the local signing key and JWKS under .local/auth (once)
#   deploy/local/auth.sh bootstrap   create tenant `dev` in admin-svc and write .local/dev-credentials.env
#
# The local "identity provider" is a key pair made by build/bin/cqrs-token: the services
# verify JWTs against .local/auth/jwks.json (AUTH_JWKS_FILE), and bootstrap signs two tokens
# with the private key (.local/auth/signing-key.jwk, mode 0600):
#   CQRS_TOKEN        tenant `dev`, scopes commands:write queries:read admin
#   CQRS_ADMIN_TOKEN  a platform administrator (scope platform:admin: tenants and their keys)
# Both are valid for TOKEN_TTL_S seconds (default 30 days) and re-signed by every `make run`.
# With AUTH=off nothing is made, and the services log a warning at start. With your own
# identity provider (AUTH_JWKS_URL or AUTH_JWKS_FILE set) no local key is made either: get
# tokens from your provider.
set -euo pipefail

PFX="[auth]"
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BIN_DIR=${SVC_BIN_DIR:-$ROOT/build/bin}
AUTH_DIR=$LOCAL/auth
CREDS=$LOCAL/dev-credentials.env
ISSUER=${AUTH_ISSUER:-cqrs-local}
AUDIENCE=${AUTH_AUDIENCE:-cqrs}
TTL=${TOKEN_TTL_S:-2592000}
ADMIN_URL=http://127.0.0.1:${ADMIN_PORT:-8083}
DEV_TENANT=${DEV_TENANT:-dev}

say() { echo "$PFX $*"; }
die() { echo "$PFX ERROR: $*" >&2; exit 1; }

auth_off() { [[ ${AUTH:-on} == off ]]; }
own_idp() { [[ -n ${AUTH_JWKS_URL:-} || -n ${AUTH_JWKS_FILE:-} ]]; }

cmd_env() {
  auth_off && { echo "AUTH=off"; return 0; }
  own_idp && return 0
  echo "AUTH_JWKS_FILE=$AUTH_DIR/jwks.json"
  echo "AUTH_ISSUER=$ISSUER"
  echo "AUTH_AUDIENCE=$AUDIENCE"
}

cmd_keys() {
  if auth_off || own_idp; then return 0; fi
  if [[ -f $AUTH_DIR/signing-key.jwk && -f $AUTH_DIR/jwks.json ]]; then return 0; fi
  [[ -x $BIN_DIR/cqrs-token ]] || die "$(rel "$BIN_DIR")/cqrs-token not found (build the project first)"
  mkdir -p "$AUTH_DIR"
  chmod 700 "$AUTH_DIR"
  "$BIN_DIR/cqrs-token" keygen --dir "$AUTH_DIR" >/dev/null
  say "made a local signing key: $(rel "$AUTH_DIR")/jwks.json (public), signing-key.jwk (private)"
}

sign() { # sub scope [tenant]
  local args=(sign --key "$AUTH_DIR/signing-key.jwk" --iss "$ISSUER" --aud "$AUDIENCE" --sub "$1"
    --scope "$2" --ttl "$TTL")
  [[ -n ${3:-} ]] && args+=(--tenant "$3")
  "$BIN_DIR/cqrs-token" "${args[@]}"
}

cmd_bootstrap() {
  if auth_off; then
    say "AUTH=off: the services accept every request as tenant 'default' without a credential"
    return 0
  fi
  if own_idp; then
    say "AUTH_JWKS_URL/AUTH_JWKS_FILE is yours: no local credentials made; create tenants with a" \
      "platform:admin token of your provider (POST $ADMIN_URL/v1/admin/tenants)"
    return 0
  fi
  local admin token code start=$SECONDS
  # admin-svc answers once it has read the control records (readyz), not just when it is alive
  until curl -fsS -m 2 -o /dev/null "$ADMIN_URL/readyz" 2>/dev/null; do
    (( SECONDS - start < 60 )) || die "admin-svc at $ADMIN_URL is not ready after 60 s (see .local/log/admin-svc.log)"
    sleep 0.25
  done
  admin=$(sign dev-admin platform:admin)
  code=$(curl -sS -m 10 -o "$LOCAL/log/auth-bootstrap.json" -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
    --data "{\"tenantId\":\"$DEV_TENANT\"}" "$ADMIN_URL/v1/admin/tenants") || code=000
  case $code in
    201) say "created tenant '$DEV_TENANT'" ;;
    409) say "tenant '$DEV_TENANT' exists" ;;
    *) die "admin-svc answered $code to creating tenant '$DEV_TENANT': $(cat "$LOCAL/log/auth-bootstrap.json" 2>/dev/null)" ;;
  esac
  token=$(sign "$DEV_TENANT-developer" "commands:write queries:read admin" "$DEV_TENANT")
  umask 077
  {
    echo "# Written by make run (deploy/local/auth.sh); valid for $((TTL / 86400)) days. Source it:"
    echo "#   . .local/dev-credentials.env"
    echo "# then add -H \"Authorization: Bearer \$CQRS_TOKEN\" to requests."
    echo "CQRS_TOKEN=$token"
    echo "CQRS_ADMIN_TOKEN=$admin"
  } >"$CREDS"
  say "credentials for tenant '$DEV_TENANT' in $(rel "$CREDS"); use them like this:"
  say "  . $(rel "$CREDS")"
  say "  curl -H \"Authorization: Bearer \$CQRS_TOKEN\" http://127.0.0.1:8081/v1/users/<id>"
}

case ${1:-} in
  env) cmd_env ;;
  keys) cmd_keys ;;
  bootstrap) cmd_bootstrap ;;
  *) echo "usage: $0 env|keys|bootstrap" >&2; exit 2 ;;
esac
