#!/usr/bin/env bash
# Offline checks of the Helm chart deploy/helm/cqrs, for Kubernetes 1.30:
#   helm lint --strict, helm template (default values and every ci/*-values.yaml), a schema
#   rejection test, kubectl-validate of every rendered manifest (ServiceMonitor against
#   the Prometheus Operator CRD), and each Deployment's image, port, probes and user against
#   deploy/docker/<svc>.Dockerfile and the service's default port.
# Tools are pinned and installed with `go install` into <repo>/.local/bin when missing;
# everything it writes stays under <repo>/.local/. Non-interactive, idempotent.
# Prints "helm check: PASS" and exits 0, or "helm check: FAIL (...)" and exits 1.
set -euo pipefail

HELM_VERSION=v3.21.4
KUBECTL_VALIDATE_VERSION=v0.0.4
PROMETHEUS_OPERATOR_VERSION=v0.85.0 # the Go module that ships the ServiceMonitor CRD
KUBE_VERSION=1.30.0

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
chart="$here/cqrs"
bin="$repo/.local/bin"
out="$repo/.local/helm-check"
release=cqrs
namespace=cqrs

failures=()
started=$SECONDS
step() { printf '==> %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; failures+=("$*"); }
finish() {
  local took=$((SECONDS - started))
  if ((${#failures[@]})); then
    printf 'helm check: FAIL (%d problem(s), %ds): %s\n' "${#failures[@]}" "$took" "$(printf '%s; ' "${failures[@]}" | sed 's/; $//')"
    exit 1
  fi
  printf 'helm check: PASS (%ds; manifests in %s)\n' "$took" "${out#"$repo"/}"
}

# --- tools -------------------------------------------------------------------------
mkdir -p "$bin" "$out"
# Helm keeps its caches and config under .local, not in $HOME.
export HELM_CACHE_HOME="$out/helm-home/cache" HELM_CONFIG_HOME="$out/helm-home/config" \
       HELM_DATA_HOME="$out/helm-home/data"

if ! command -v go >/dev/null 2>&1; then
  fail "go is not installed (needed once to build helm and kubectl-validate)"
  finish
fi

helm="$bin/helm"
if [[ -x $helm && "$("$helm" version --short 2>/dev/null)" == "$HELM_VERSION"* ]]; then
  step "helm $HELM_VERSION present"
else
  step "installing helm $HELM_VERSION (go install; about 2 minutes the first time)"
  t=$SECONDS
  # -X sets the version `helm version` reports (go install alone leaves "v3.21").
  GOBIN="$bin" go install \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" || { fail "go install helm $HELM_VERSION"; finish; }
  step "helm built in $((SECONDS - t))s"
fi

kv="$bin/kubectl-validate"
kv_stamp="$bin/.kubectl-validate.version" # the tool has no --version
if [[ -x $kv && -f $kv_stamp && "$(cat "$kv_stamp")" == "$KUBECTL_VALIDATE_VERSION" ]]; then
  step "kubectl-validate $KUBECTL_VALIDATE_VERSION present"
else
  step "installing kubectl-validate $KUBECTL_VALIDATE_VERSION (go install; about 3 minutes the first time)"
  t=$SECONDS
  GOBIN="$bin" go install -ldflags "-s -w" "sigs.k8s.io/kubectl-validate@$KUBECTL_VALIDATE_VERSION" ||
    { fail "go install kubectl-validate $KUBECTL_VALIDATE_VERSION"; finish; }
  echo "$KUBECTL_VALIDATE_VERSION" >"$kv_stamp"
  step "kubectl-validate built in $((SECONDS - t))s"
fi

# The ServiceMonitor CRD, from the prometheus-operator Go module (module cache; pinned).
crds="$out/crds"
crd="$crds/monitoring.coreos.com_servicemonitors.yaml"
crd_stamp="$crds/.version"
if [[ ! -f $crd || ! -f $crd_stamp || "$(cat "$crd_stamp")" != "$PROMETHEUS_OPERATOR_VERSION" ]]; then
  step "fetching the ServiceMonitor CRD (github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION)"
  mkdir -p "$crds"
  dir="$(cd "$out" && GOFLAGS=-mod=mod go mod download -json \
    "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')" || true
  src="$dir/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml"
  if [[ -n $dir && -f $src ]]; then
    install -m 0644 "$src" "$crd"
    echo "$PROMETHEUS_OPERATOR_VERSION" >"$crd_stamp"
  else
    fail "cannot get the ServiceMonitor CRD from the Go module proxy"
    finish
  fi
fi

# --- lint, render, validate --------------------------------------------------------
# name:values-file ("" = the chart's defaults plus the auth settings it requires)
cases=("default:")
auth_set=(--set auth.jwksUrl=https://idp.example.com/.well-known/jwks.json --set auth.issuer=https://idp.example.com/
  --set auth.audience=cqrs)
for f in "$chart"/ci/*-values.yaml; do
  [[ -e $f ]] || continue
  name="$(basename "$f" -values.yaml)"
  cases+=("$name:$f")
done

for c in "${cases[@]}"; do
  name="${c%%:*}" values="${c#*:}"
  args=(--kube-version "$KUBE_VERSION")
  if [[ -n $values ]]; then args+=(-f "$values"); else args+=("${auth_set[@]}"); fi
  label="$name${values:+ (${values#"$repo"/})}"

  step "helm lint --strict: $label"
  if ! "$helm" lint "$chart" --strict "${args[@]}"; then
    fail "helm lint $name"
    continue
  fi

  manifest="$out/$name.yaml"
  step "helm template: $label -> ${manifest#"$repo"/}"
  if ! "$helm" template "$release" "$chart" --namespace "$namespace" "${args[@]}" >"$manifest"; then
    fail "helm template $name"
    continue
  fi
  grep -E '^kind: ' "$manifest" | sort | uniq -c | sed 's/^/    /'

  step "kubectl-validate --version ${KUBE_VERSION%.*}: ${manifest#"$repo"/}"
  if ! "$kv" "$manifest" --version "${KUBE_VERSION%.*}" --local-crds "$crds"; then
    fail "kubectl-validate $name"
  fi
done

# The chart against the images (deploy/docker/*.Dockerfile, what `make images` builds): for every
# service (each *-svc directory) the default render has a Deployment with image cqrs/<svc>
# (images.sh's names), whose containerPort and HTTP_PORT equal the Dockerfile's EXPOSE, its
# HEALTHCHECK's port and the binary's default port (<svc>/main.c); whose startup and liveness
# probes GET the HEALTHCHECK's path and readiness GETs /readyz (a route of libshared's service
# shell) on that port; whose pod runs as the image's USER, non-root, read-only root filesystem.
# tests/images/smoke.sh runs the images with those settings.
step "the chart's Deployments against the Dockerfiles (ports, probes, user, image names)"
# shellcheck source=deploy/docker/engine.sh
source "$repo/deploy/docker/engine.sh"
check_images_match() { # manifest
  local manifest=$1 svc df expose probe pport ppath user main_port d got want
  if ! command -v yq >/dev/null || ! command -v jq >/dev/null; then
    fail "yq and jq are needed (make deps)"
    return
  fi
  grep -q '"/readyz"' "$repo/libshared/src/service.c" || fail "libshared/src/service.c has no /readyz route"
  for svc in $(images_services); do
    df="$repo/deploy/docker/$svc.Dockerfile"
    [[ -f $df ]] || { fail "$svc: no deploy/docker/$svc.Dockerfile"; continue; }
    expose=$(dockerfile_expose "$df") probe=$(dockerfile_probe "$df")
    pport=${probe%% *} ppath=${probe#* }
    user=$(sed -n 's/^USER[[:space:]]\{1,\}\([0-9]*:[0-9]*\).*/\1/p' "$df")
    main_port=$(grep -ho "cqrs_service_init[_a-z]*(&svc, \"$svc\", [0-9]*" "$repo/$svc"/*.c | grep -o '[0-9]*$' | head -n1)
    # shellcheck disable=SC2016 # $n is jq's variable
    d=$(yq -c --arg n "$svc" 'select(.kind == "Deployment") | .spec.template.spec | select(.containers[0].name == $n) | {
      image: .containers[0].image, port: .containers[0].ports[0].containerPort, portName: .containers[0].ports[0].name,
      env: ([.containers[0].env[] | select(.name == "HTTP_PORT") | .value] | first),
      startup: .containers[0].startupProbe.httpGet, live: .containers[0].livenessProbe.httpGet,
      ready: .containers[0].readinessProbe.httpGet, user: "\(.securityContext.runAsUser):\(.securityContext.runAsGroup)",
      nonRoot: .securityContext.runAsNonRoot, ro: .containers[0].securityContext.readOnlyRootFilesystem}' "$manifest")
    [[ -n $d ]] || { fail "$svc: no Deployment with a container named $svc in ${manifest#"$repo"/}"; continue; }
    got=$(jq -r '[.image, .port, .env, .startup.path, .live.path, .ready.path, .user, .nonRoot, .ro,
      ([.startup.port, .live.port, .ready.port] | map(. == "http") | all), .portName] | map(tostring) | join(" ")' <<<"$d")
    want="${IMAGE_REPO_PREFIX}$svc:$(images_app_version) $expose $expose $ppath $ppath /readyz $user true true true http"
    if [[ -z $expose || $expose != "$pport" || $expose != "$main_port" ]]; then
      fail "$svc: EXPOSE '$expose', HEALTHCHECK port '$pport' and $svc's default port '$main_port' differ"
    elif [[ $got != "$want" ]]; then
      fail "$svc: chart has '$got', the image wants '$want' (image port HTTP_PORT startup liveness readiness user nonRoot readOnly probes-on-http port-name)"
    else
      printf '    %-14s port %s, probes %s %s /readyz, user %s, image %s: match\n' "$svc" "$expose" "$ppath" "$ppath" "$user" "${IMAGE_REPO_PREFIX}$svc"
    fi
  done
}
check_images_match "$out/default.yaml"

# The schema must refuse bad values (and the chart must not render them).
step "values.schema.json rejects config.logLevel=verbose and commandSvc.httpPort=0"
for bad in config.logLevel=verbose commandSvc.httpPort=0; do
  if "$helm" template "$release" "$chart" --kube-version "$KUBE_VERSION" "${auth_set[@]}" --set "$bad" >/dev/null 2>"$out/schema-reject.err"; then
    fail "values.schema.json accepted $bad"
  else
    printf '    refused %s: %s\n' "$bad" "$(grep -m1 -o 'at .*' "$out/schema-reject.err" || head -c 160 "$out/schema-reject.err")"
  fi
done

# Secure by default: without an authentication setting the chart must refuse to render.
step "the chart refuses to render without auth settings"
if "$helm" template "$release" "$chart" --kube-version "$KUBE_VERSION" >/dev/null 2>"$out/auth-reject.err"; then
  fail "the chart rendered without auth settings"
else
  printf '    refused: %s\n' "$(grep -m1 -o 'auth: .*' "$out/auth-reject.err" || head -c 160 "$out/auth-reject.err")"
fi
if ! "$helm" template "$release" "$chart" --kube-version "$KUBE_VERSION" --set auth.enabled=false \
  | grep -q 'AUTH: "off"'; then
  fail "auth.enabled=false did not render AUTH=off"
fi

finish
