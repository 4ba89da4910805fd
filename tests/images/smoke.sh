#!/usr/bin/env bash
# Image smoke test (ctest label `images`; part of `make test`): builds or reuses the images
# (deploy/docker/images.sh), then runs one container per service with --network=host against
# the local stack (KAFKA_BROKERS, MONGO_URI; default 127.0.0.1:9092 and :27017) under the
# Helm chart's security settings (read-only root filesystem, all capabilities dropped,
# no-new-privileges) and checks, for each image:
#   - its run stage's binary finds every shared library (ldd inside the image);
#   - the container answers /readyz (start-to-ready time measured);
#   - the process runs as 10001:10001 (its real and effective ids, seen from the host);
#   - its HEALTHCHECK command, run inside the container, exits 0, and 1 against a closed port;
#   - SIGTERM (`stop`) ends it with exit code 0 before the stop timeout.
# and once, entirely against the containers with authentication ON: a key pair from
# build/bin/cqrs-token, its JWKS mounted into every container (AUTH_JWKS_FILE); a
# platform:admin token creates a tenant through admin-svc; that tenant's token creates a user
# through command-svc and reads it back through query-svc (projected by projector-svc).
# Each run uses its own ports, TOPIC_PREFIX, MONGO_DB and tenant. Results (sizes, start-to-ready
# and stop times) go to stdout and <log dir>/images-smoke.txt; container logs next to it.
# Exit 0 = pass, 1 = fail, 77 = no container engine (ctest: skipped).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/docker/engine.sh
source "$here/../../deploy/docker/engine.sh"
root=$IMAGES_ROOT
bin=${CQRS_BIN_DIR:-$root/build/bin}
logs=${CQRS_TEST_LOG_DIR:-$root/build/test-logs}
brokers=${KAFKA_BROKERS:-127.0.0.1:9092}
mongo=${MONGO_URI:-mongodb://127.0.0.1:27017}
stop_timeout=30 # the chart's terminationGracePeriodSeconds
ready_deadline=120

failures=()
fail() { printf 'FAIL: %s\n' "$*" >&2; failures+=("$*"); }
step() { printf '==> %s\n' "$*"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

if ! engine_detect; then
  echo "images smoke: SKIPPED: no container engine answers (podman or docker; make deps installs podman)"
  exit 77
fi
E=("${ENGINE_CMD[@]}")
[[ -x $bin/cqrs-token ]] || { echo "images smoke: FAIL: $bin/cqrs-token not built" >&2; exit 1; }
mkdir -p "$logs"

# --- the images ------------------------------------------------------------------------
step "deploy/docker/images.sh ($ENGINE)"
t=$SECONDS
deploy_rc=0
"$root/deploy/docker/images.sh" || deploy_rc=$?
((deploy_rc == 0)) || { echo "images smoke: FAIL: images.sh exited $deploy_rc" >&2; exit 1; }
build_s=$((SECONDS - t))

mapfile -t services < <(images_services)

step "the build stage is the same in every Dockerfile (one compile for all images)"
first=${services[0]}
for svc in "${services[@]:1}"; do
  if ! diff <(dockerfile_build_stage "$IMAGES_DOCKER_DIR/$first.Dockerfile") \
    <(dockerfile_build_stage "$IMAGES_DOCKER_DIR/$svc.Dockerfile") >&2; then
    fail "$svc.Dockerfile's build stage differs from $first.Dockerfile's"
  fi
done

# --- the run ---------------------------------------------------------------------------
run_id=img$(date +%s)$$
tenant=t$run_id
declare -A port name readyms stopms
free_port() { # a port nothing listens on, from a random start
  local p=$((20000 + RANDOM % 20000))
  while timeout 1 bash -c ">/dev/tcp/127.0.0.1/$p" 2>/dev/null || [[ " ${port[*]:-} " == *" $p "* ]]; do
    p=$((p + 1))
  done
  echo "$p"
}
for svc in "${services[@]}"; do
  port[$svc]=$(free_port)
  name[$svc]=cqrs-smoke-$run_id-$svc
done

auth=$logs/$run_id-auth
started=()
cleanup() {
  local svc
  for svc in "${started[@]}"; do
    "${E[@]}" logs "${name[$svc]}" >"$logs/$run_id-$svc.log" 2>&1 || true
    "${E[@]}" rm -f "${name[$svc]}" >/dev/null 2>&1 || true
  done
  rm -f "$auth/signing-key.jwk" # this run's private key; the JWKS (public) stays with the logs
}
trap cleanup EXIT

mkdir -p "$auth"
"$bin/cqrs-token" keygen --dir "$auth" >/dev/null
chmod 0644 "$auth/jwks.json" # read by uid 10001 in the containers; the private key stays 0600
iss=cqrs-images-smoke aud=cqrs
sign() { # sub scope [tenant]
  "$bin/cqrs-token" sign --key "$auth/signing-key.jwk" --iss "$iss" --aud "$aud" --sub "$1" \
    --scope "$2" ${3:+--tenant "$3"} --ttl 900
}

run_service() { # svc
  local svc=$1 env=(
    -e "HTTP_PORT=${port[$1]}" -e HTTP_THREADS=1 -e "KAFKA_BROKERS=$brokers" -e "MONGO_URI=$mongo"
    -e "MONGO_DB=$run_id" -e "TOPIC_PREFIX=$run_id." -e TOPIC_PARTITIONS=1 -e TOPIC_REPLICATION=1
    -e AUTH_JWKS_FILE=/etc/cqrs/jwks.json -e "AUTH_ISSUER=$iss" -e "AUTH_AUDIENCE=$aud")
  [[ -n ${FERRETDB_PG_URI:-} ]] && env+=(-e "FERRETDB_PG_URI=$FERRETDB_PG_URI")
  "${E[@]}" run -d --name "${name[$svc]}" --network=host --read-only --cap-drop=ALL \
    --security-opt=no-new-privileges --stop-timeout "$stop_timeout" "${ENGINE_LIMITS[@]}" \
    -v "$auth/jwks.json:/etc/cqrs/jwks.json:ro" "${env[@]}" "${IMAGE_REPO_PREFIX}$svc:dev" \
    2> >(no_timer_noise >&2) >/dev/null
}

# Without systemd, podman logs an error for the HEALTHCHECK timer it cannot add or remove on
# every run and stop; the container is unaffected and this test runs the probe itself.
no_timer_noise() { grep -v 'unable to get systemd connection' || true; }

http_code() { curl -s -o /dev/null -m 3 -w '%{http_code}' "$@" || true; }

await_ready() { # svc start_ms
  local svc=$1 t0=$2 deadline=$((SECONDS + ready_deadline))
  while ((SECONDS < deadline)); do
    if [[ $(http_code "http://127.0.0.1:${port[$svc]}/readyz") == 200 ]]; then
      readyms[$svc]=$(($(now_ms) - t0))
      return 0
    fi
    if [[ $("${E[@]}" inspect --format '{{.State.Running}}' "${name[$svc]}" 2>/dev/null) != true ]]; then
      "${E[@]}" logs "${name[$svc]}" 2>&1 | tail -n 15 >&2 || true
      fail "$svc: the container stopped before it was ready"
      return 1
    fi
    sleep 0.2
  done
  "${E[@]}" logs "${name[$svc]}" 2>&1 | tail -n 15 >&2 || true
  fail "$svc: /readyz not 200 within ${ready_deadline}s"
  return 1
}

# command-svc first: it creates the topics the projector subscribes to.
order=(command-svc)
for svc in "${services[@]}"; do [[ $svc == command-svc ]] || order+=("$svc"); done

for svc in "${order[@]}"; do
  image=${IMAGE_REPO_PREFIX}$svc:dev
  step "$svc: libraries, start, /readyz, user, HEALTHCHECK (port ${port[$svc]})"
  missing=$("${E[@]}" run --rm --network=none "${ENGINE_LIMITS[@]}" --entrypoint /usr/bin/ldd "$image" \
    "/usr/local/bin/$svc" 2>&1 | grep 'not found' || true)
  [[ -z $missing ]] || fail "$svc: the image lacks shared libraries: $(echo "$missing" | tr -s ' \n\t' ' ')"

  t0=$(now_ms)
  if ! run_service "$svc"; then fail "$svc: the container did not start"; continue; fi
  started+=("$svc")
  await_ready "$svc" "$t0" || continue
  echo "    ready in ${readyms[$svc]} ms"

  user=$("${E[@]}" image inspect --format '{{.Config.User}}' "$image")
  [[ $user == 10001:10001 ]] || fail "$svc: image USER is '$user', not 10001:10001"
  pid=$("${E[@]}" inspect --format '{{.State.Pid}}' "${name[$svc]}")
  ids=$(awk '/^(Uid|Gid):/ {print $1, $2, $3, $4, $5}' "/proc/$pid/status" | tr '\n' ' ')
  [[ $ids == "Uid: 10001 10001 10001 10001 Gid: 10001 10001 10001 10001 " ]] ||
    fail "$svc: process ids are '$ids', not 10001 throughout"

  # The HEALTHCHECK command as the image records it ("CMD", then the argv).
  probe=$("${E[@]}" image inspect --format '{{json .Config.Healthcheck.Test}}' "$image" 2>/dev/null |
    jq -r 'if type == "array" and .[0] == "CMD" then .[1:] | @sh else empty end' 2>/dev/null || true)
  if [[ -z $probe ]]; then
    fail "$svc: the image has no exec-form HEALTHCHECK (podman: was it built with --format docker?)"
  else
    eval "argv=($probe)"
    # shellcheck disable=SC2154 # argv is set by the eval
    "${E[@]}" exec "${name[$svc]}" "${argv[@]}" || fail "$svc: HEALTHCHECK ${argv[*]} exited $? against the running service"
    closed=$(free_port)
    if "${E[@]}" exec -e "HTTP_PORT=$closed" "${name[$svc]}" "${argv[@]}" 2>/dev/null; then
      fail "$svc: HEALTHCHECK exited 0 against a closed port"
    fi
    if [[ $ENGINE == podman ]]; then
      h=$("${E[@]}" healthcheck run "${name[$svc]}" 2>&1) || fail "$svc: podman healthcheck run: $h"
    fi
  fi
done

# --- end to end, authentication on --------------------------------------------------
if ((${#readyms[@]} == ${#services[@]})); then
  step "end to end: tenant $tenant via admin-svc, CreateUser via command-svc, read via query-svc"
  admin_token=$(sign smoke-admin platform:admin)
  token=$(sign smoke-user "commands:write queries:read" "$tenant")
  body=$logs/$run_id-e2e.json
  code=$(curl -s -m 10 -o "$body" -w '%{http_code}' -X POST -H "Authorization: Bearer $admin_token" \
    -H 'Content-Type: application/json' --data "{\"tenantId\":\"$tenant\"}" \
    "http://127.0.0.1:${port[admin-svc]}/v1/admin/tenants") || true
  [[ $code == 201 ]] || fail "admin-svc: creating tenant $tenant answered $code: $(head -c 300 "$body")"

  email="smoke-$run_id@example.com"
  cmd="{\"commandType\":\"CreateUser\",\"email\":\"$email\",\"name\":\"Smoke Test\",\"commandId\":\"$run_id-1\"}"
  # The tenant reaches command-svc's registry through the control topic (about a second):
  # until then the token is refused; the same commandId makes a retry harmless.
  deadline=$((SECONDS + 30))
  while :; do
    code=$(curl -s -m 10 -o "$body" -w '%{http_code}' -X POST -H "Authorization: Bearer $token" \
      -H 'Content-Type: application/json' --data "$cmd" "http://127.0.0.1:${port[command-svc]}/v1/commands") || true
    [[ $code == 401 && $SECONDS -lt $deadline ]] || break
    sleep 0.2
  done
  id=$(jq -r '.aggregateId // empty' "$body" 2>/dev/null || true)
  if [[ $code != 201 || -z $id ]]; then
    fail "command-svc: CreateUser answered $code: $(head -c 300 "$body")"
  else
    echo "    CreateUser: 201, aggregateId $id"
    url="http://127.0.0.1:${port[query-svc]}/v1/users/$id?minVersion=1&waitMs=5000"
    [[ $(http_code "$url") == 401 ]] || fail "query-svc: a read without a credential was not 401"
    deadline=$((SECONDS + 60))
    while :; do
      code=$(curl -s -m 10 -o "$body" -w '%{http_code}' -H "Authorization: Bearer $token" "$url") || true
      [[ $code != 200 && $SECONDS -lt $deadline ]] || break
      sleep 0.2
    done
    got=$(jq -r '[.userId, .email, .version] | @tsv' "$body" 2>/dev/null || true)
    if [[ $code != 200 || $got != "$id"$'\t'"$email"$'\t'1 ]]; then
      fail "query-svc: GET /v1/users/$id answered $code: $(head -c 300 "$body")"
    else
      echo "    read back through query-svc: $(jq -c '{userId, email, name, version}' "$body")"
    fi
  fi
else
  fail "end to end not run: not every container became ready"
fi

# --- SIGTERM -------------------------------------------------------------------------------
step "SIGTERM: each container stops with exit code 0 within ${stop_timeout}s"
for ((i = ${#order[@]} - 1; i >= 0; i--)); do
  svc=${order[i]}
  [[ " ${started[*]} " == *" $svc "* ]] || continue
  t0=$(now_ms)
  "${E[@]}" stop -t "$stop_timeout" "${name[$svc]}" 2> >(no_timer_noise >&2) >/dev/null || fail "$svc: stop failed"
  stopms[$svc]=$(($(now_ms) - t0))
  rc=$("${E[@]}" inspect --format '{{.State.ExitCode}}' "${name[$svc]}")
  echo "    $svc: exit $rc after ${stopms[$svc]} ms"
  [[ $rc == 0 ]] || fail "$svc: exit code $rc after SIGTERM (${stopms[$svc]} ms)"
  ((stopms[$svc] < stop_timeout * 1000)) || fail "$svc: took ${stopms[$svc]} ms to stop"
done

# --- results -------------------------------------------------------------------------------
{
  echo "images smoke ($ENGINE, $(date -u +%Y-%m-%dT%H:%MZ)): images.sh ${build_s}s"
  printf '%-14s %9s %15s %10s\n' image "size MB" "start-to-ready" "SIGTERM"
  for svc in "${services[@]}"; do
    size=$("${E[@]}" image inspect --format '{{.Size}}' "${IMAGE_REPO_PREFIX}$svc:dev")
    printf '%-14s %9s %12s ms %7s ms\n' "$svc" "$(awk -v s="$size" 'BEGIN {printf "%.1f", s / 1e6}')" \
      "${readyms[$svc]:--}" "${stopms[$svc]:--}"
  done
} | tee "$logs/images-smoke.txt"

if ((${#failures[@]})); then
  printf 'images smoke: FAIL (%d): %s\n' "${#failures[@]}" "$(printf '%s; ' "${failures[@]}" | sed 's/; $//')"
  exit 1
fi
echo "images smoke: PASS (logs: ${logs#"$root"/}/$run_id-*)"
