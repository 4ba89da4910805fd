#!/usr/bin/env bash
# Install the Debian packages this project needs to build, test and run locally
# (postgresql: the server binaries for stack.sh's private cluster behind FerretDB; Debian's
# own cluster on 5432, if the package starts one, is not used; clang + libclang-rt-dev: the
# libFuzzer targets of `make fuzz`, whose runtime is only a Recommends of clang).
# Idempotent and non-interactive: checks with dpkg-query first, so a second run is instant;
# apt-get update runs only when something has to be installed. Uses sudo only when not root.
set -euo pipefail

PFX="[deps]"
say() { echo "$PFX $*"; }
die() { echo "$PFX ERROR: $*" >&2; exit 1; }

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  librdkafka-dev libmongoc-dev libbson-dev uuid-dev libcriterion-dev libevent-dev
  kcat wrk curl nginx-light
  postgresql libpq-dev
  libcjose-dev libjansson-dev libcurl4-openssl-dev libssl-dev
  jq yq
  # the contract tests' virtualenv (tests/contract/venv.sh)
  python3-venv
  # the web console's browser test (tests/browser/, e2e_console): Debian's browser and its WebDriver
  chromium chromium-driver
  # container images (make images, the image smoke test): podman with the runc runtime (crun
  # refuses hybrid cgroups), debootstrap for a local Debian base image when no registry answers
  podman runc debootstrap debian-archive-keyring
  # the fuzz targets (tests/fuzz/): clang and its libFuzzer runtime
  clang libclang-rt-dev
)
# toolchains for the local stack: only when the command is absent (a JDK, Maven or Go
# installed some other way is kept as it is)
command -v java >/dev/null || PACKAGES+=(openjdk-17-jre-headless)
command -v mvn  >/dev/null || PACKAGES+=(maven)
command -v go   >/dev/null || PACKAGES+=(golang)

installed() {
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  say "all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || die "not root and sudo not found; install as root: ${missing[*]}"
  SUDO=(sudo)
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LOG=$ROOT/.local/log/deps.log
mkdir -p "$(dirname "$LOG")"

say "installing: ${missing[*]} (log: .local/log/deps.log)"
export DEBIAN_FRONTEND=noninteractive
if ! "${SUDO[@]}" apt-get update -q >>"$LOG" 2>&1; then
  tail -n 20 "$LOG" >&2
  die "apt-get update failed, see .local/log/deps.log"
fi
if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}" >>"$LOG" 2>&1; then
  tail -n 20 "$LOG" >&2
  die "apt-get install failed, see .local/log/deps.log"
fi
for p in "${missing[@]}"; do
  installed "$p" || die "$p still not installed after apt-get, see .local/log/deps.log"
done
say "installed ${#missing[@]} package(s)"
