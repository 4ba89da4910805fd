# shellcheck shell=bash disable=SC2034
# The container engine for deploy/docker/images.sh and tests/images/smoke.sh (sourced, not run).
#
# engine_detect sets ENGINE (podman or docker) and the arrays
#   ENGINE_CMD    the engine command with its global options (podman: --runtime runc)
#   ENGINE_LIMITS the rlimits every build and run passes (podman: the host's hard limits)
# and returns 1 when no engine answers. CONTAINER_ENGINE=podman|docker picks one; otherwise
# podman when it answers (what deploy/local/deps.sh installs), else docker when its daemon does.
#
# Podman on this machine kind (deploy/docker/README.md): the default runtime crun refuses
# hybrid cgroups, so runc (PODMAN_RUNTIME); podman's default rlimits (nofile 1048576) are above
# what may be granted here, so every build and container gets nofile 65536 and nproc 4096 (a
# per-uid count of threads), each lowered to this shell's hard limit. (Here nofile 20000; nproc
# above 32768 was refused although the hard limit reads 96364.)

IMAGES_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
IMAGES_DOCKER_DIR=$IMAGES_ROOT/deploy/docker
IMAGES_CACHE=$IMAGES_ROOT/.local/images
# Image names: <IMAGE_REPO_PREFIX><service>:<tag>, tagged with the chart's appVersion and `dev`
# (compose.yaml) — the Helm chart's default image.repository is cqrs/<service>.
IMAGE_REPO_PREFIX=${IMAGE_REPO_PREFIX:-cqrs/}

limit_at_most() { # want hard: the smaller ("unlimited" is larger than any number)
  if [[ $2 == unlimited ]] || (($2 > $1)); then echo "$1"; else echo "$2"; fi
}

engine_detect() {
  ENGINE='' ENGINE_CMD=() ENGINE_LIMITS=()
  local want=${CONTAINER_ENGINE:-} e
  for e in ${want:-podman docker}; do
    command -v "$e" >/dev/null 2>&1 || continue
    case $e in
      podman)
        local runtime=${PODMAN_RUNTIME:-runc}
        command -v "$runtime" >/dev/null 2>&1 || runtime=
        ENGINE_CMD=(podman ${runtime:+--runtime "$runtime"})
        local nofile nproc
        nofile=$(limit_at_most 65536 "$(ulimit -Hn)") nproc=$(limit_at_most 4096 "$(ulimit -Hu)")
        ENGINE_LIMITS=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")
        ;;
      docker) ENGINE_CMD=(docker) ENGINE_LIMITS=() ;;
      *) echo "CONTAINER_ENGINE=$e: not podman or docker" >&2; return 1 ;;
    esac
    if "${ENGINE_CMD[@]}" info >/dev/null 2>&1; then
      ENGINE=$e
      return 0
    fi
  done
  ENGINE_CMD=()
  return 1
}

# The services: every <name>-svc directory; each must have deploy/docker/<name>-svc.Dockerfile.
images_services() {
  local d
  for d in "$IMAGES_ROOT"/*-svc/; do basename "$d"; done
}

# The tag every image gets besides `dev`: the Helm chart's appVersion.
images_app_version() {
  sed -n 's/^appVersion:[[:space:]]*"\{0,1\}\([^"]*\)"\{0,1\}[[:space:]]*$/\1/p' \
    "$IMAGES_ROOT/deploy/helm/cqrs/Chart.yaml"
}

# Everything a Dockerfile says between its build stage's FROM and the run stage's FROM.
dockerfile_build_stage() {
  sed -n '/^FROM .* AS build$/,/^FROM /{/^FROM [^A]*$/d;/^#/d;p}' "$1"
}

# A Dockerfile's EXPOSE port and HEALTHCHECK probe: "port path" of its CMD.
dockerfile_expose() { sed -n 's/^EXPOSE[[:space:]]\{1,\}\([0-9]\{1,\}\).*/\1/p' "$1"; }
dockerfile_probe() {
  sed -n 's|^.*CMD \["/usr/local/bin/healthcheck", "\([0-9]*\)", "\([^"]*\)"\].*|\1 \2|p' "$1"
}
