#!/usr/bin/env bash
# `make images`: one image per service (every *-svc directory) from deploy/docker/<svc>.Dockerfile,
# tagged cqrs/<svc>:dev and cqrs/<svc>:<chart appVersion>, with podman or docker.
#
#   deploy/docker/images.sh            build (or reuse) every image; prints a line per image
#   deploy/docker/images.sh base       only make sure the Debian base images exist
#
# With podman and no local debian:<release> images it imports them from the tarballs cached under
# .local/images/ (after the engine's storage was wiped), else pulls them when a registry answers,
# else makes them once with debootstrap (and caches the tarballs), and tags them docker.io/library/debian:<release>
# and :<release>-slim, so the Dockerfiles build unchanged with --pull=never.
# Idempotent: a second run reuses every layer (the four Dockerfiles share one build stage, so the
# sources are compiled once for all four images). Builds run under `nice -n ${IMAGES_NICE:-10}`.
# Exit 0 = every image built; 1 = something failed (the message says what); 3 = no engine.
set -euo pipefail

# shellcheck source=deploy/docker/engine.sh
source "$(dirname "${BASH_SOURCE[0]}")/engine.sh"

PFX="[images]"
say() { echo "$PFX $*"; }
die() { echo "$PFX ERROR: $*" >&2; exit 1; }

RELEASE=${DEBIAN_RELEASE:-bookworm}
NICE=${IMAGES_NICE:-10}
BASE_FULL=docker.io/library/debian:$RELEASE
BASE_SLIM=docker.io/library/debian:$RELEASE-slim

# --- the Debian base images ------------------------------------------------------------

# The host's Debian mirror for <archive> (debian or debian-security; deb822 or one-line
# sources), else deb.debian.org's.
host_mirror() { # archive
  local m
  m=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
    sed -n -e "s|^URIs:[[:space:]]*\([^[:space:]]*/$1\)/\{0,1\}[[:space:]]*\$|\1|p" \
      -e "s|^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}\([^[:space:]]*/$1\)/\{0,1\}[[:space:]].*|\2|p" |
    head -n1) || true
  echo "${m:-http://deb.debian.org/$1}"
}

registry_answers() { # Docker Hub's API answers 401 to an anonymous /v2/ when it is reachable
  local code
  code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' https://registry-1.docker.io/v2/ 2>/dev/null) || true
  [[ $code == 401 || $code == 200 ]]
}

# debootstrap --variant=minbase, then what Debian's official images do to theirs: apt sources
# for the release, -updates and -security; no package cache, no apt lists, no services started
# by package scripts. The -slim variant also drops documentation, man pages and translations
# (and tells dpkg to skip them in later installs).
make_rootfs() { # dir
  local dir=$1 mirror security
  mirror=${DEBIAN_MIRROR:-$(host_mirror debian)}
  security=${DEBIAN_SECURITY_MIRROR:-$(host_mirror debian-security)}
  say "debootstrap --variant=minbase $RELEASE from $mirror (about a minute, once)"
  rm -rf "${dir:?}"
  mkdir -p "${dir:?}"
  if ! debootstrap --variant=minbase "$RELEASE" "$dir" "$mirror" >"$IMAGES_CACHE/debootstrap.log" 2>&1; then
    tail -n 20 "$IMAGES_CACHE/debootstrap.log" >&2
    die "debootstrap failed (log: .local/images/debootstrap.log)"
  fi
  rm -f "${dir:?}/etc/apt/sources.list"
  cat >"${dir:?}/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $RELEASE $RELEASE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $RELEASE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  printf '#!/bin/sh\nexit 101\n' >"${dir:?}/usr/sbin/policy-rc.d"
  chmod 0755 "${dir:?}/usr/sbin/policy-rc.d"
  printf 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };\n' \
    >"${dir:?}/etc/apt/apt.conf.d/docker-clean"
  printf 'Acquire::Languages "none";\n' >"${dir:?}/etc/apt/apt.conf.d/docker-no-languages"
  rm -rf "${dir:?}"/var/cache/apt/archives/*.deb "${dir:?}"/var/cache/apt/*.bin "${dir:?}"/var/lib/apt/lists/* \
    "${dir:?}"/var/log/* "${dir:?}"/tmp/* "${dir:?}"/dev/*
}

slim_rootfs() { # dir
  local dir=$1
  cat >"${dir:?}/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  find "${dir:?}/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "${dir:?}/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "${dir:?}"/usr/share/man/* "${dir:?}"/usr/share/groff/* "${dir:?}"/usr/share/info/* \
    "${dir:?}"/usr/share/lintian/* "${dir:?}"/usr/share/linda/*
  find "${dir:?}/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
}

import_base() { # tarball tag
  say "importing ${1#"$IMAGES_ROOT"/} as $2"
  "${ENGINE_CMD[@]}" import -q \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' --change 'LABEL org.cqrs.base=debootstrap' \
    "$1" "$2" >/dev/null || die "importing $1 failed"
}

have_image() { "${ENGINE_CMD[@]}" image inspect "$1" >/dev/null 2>&1; }

ensure_base() {
  if have_image "$BASE_FULL" && have_image "$BASE_SLIM"; then
    say "base images $BASE_FULL and $BASE_SLIM present"
    return 0
  fi
  local t=$SECONDS
  local full_tar=$IMAGES_CACHE/debian-$RELEASE.tar slim_tar=$IMAGES_CACHE/debian-$RELEASE-slim.tar
  if [[ ! -s $full_tar || ! -s $slim_tar ]] && [[ -z ${IMAGES_LOCAL_BASE:-} ]] && registry_answers; then
    say "pulling $BASE_FULL and $BASE_SLIM"
    "${ENGINE_CMD[@]}" pull -q "$BASE_FULL" >/dev/null && "${ENGINE_CMD[@]}" pull -q "$BASE_SLIM" >/dev/null &&
      { say "pulled in $((SECONDS - t))s"; return 0; }
    say "pull failed; making the base images locally"
  fi
  mkdir -p "$IMAGES_CACHE"
  if [[ ! -s $full_tar || ! -s $slim_tar ]]; then
    command -v debootstrap >/dev/null || die "debootstrap not installed (make deps)"
    [[ $(id -u) -eq 0 ]] || die "debootstrap needs root"
    local rootfs=$IMAGES_CACHE/rootfs-$RELEASE
    make_rootfs "$rootfs"
    tar -C "$rootfs" --numeric-owner -cf "$full_tar.tmp" . && mv "$full_tar.tmp" "$full_tar"
    slim_rootfs "$rootfs"
    tar -C "$rootfs" --numeric-owner -cf "$slim_tar.tmp" . && mv "$slim_tar.tmp" "$slim_tar"
    rm -rf "$rootfs"
  fi
  # Only what is missing: a new import is a new image id, and every layer above it rebuilds.
  have_image "$BASE_FULL" || import_base "$full_tar" "$BASE_FULL"
  have_image "$BASE_SLIM" || import_base "$slim_tar" "$BASE_SLIM"
  say "base images ready in $((SECONDS - t))s (tarballs cached in .local/images/)"
}

# --- the service images ------------------------------------------------------------------

build_one() { # service
  local svc=$1 file="$IMAGES_DOCKER_DIR/$1.Dockerfile" version t args
  version=$(images_app_version)
  args=(build -f "$file" -t "${IMAGE_REPO_PREFIX}$svc:dev" -t "${IMAGE_REPO_PREFIX}$svc:$version")
  # podman: keep HEALTHCHECK (OCI images have none), use the local base, the host's network
  # for apt, and the limits engine.sh chose. docker (BuildKit) keeps HEALTHCHECK anyway.
  [[ $ENGINE == podman ]] && args+=(--format docker --layers --pull=never --network=host "${ENGINE_LIMITS[@]}")
  t=$SECONDS
  if ! nice -n "$NICE" "${ENGINE_CMD[@]}" "${args[@]}" "$IMAGES_ROOT" >"$IMAGES_CACHE/build-$svc.log" 2>&1; then
    tail -n 30 "$IMAGES_CACHE/build-$svc.log" >&2
    die "$svc: build failed (log: .local/images/build-$svc.log)"
  fi
  local size
  size=$("${ENGINE_CMD[@]}" image inspect --format '{{.Size}}' "${IMAGE_REPO_PREFIX}$svc:dev")
  say "$(printf '%-14s %4ss  %4s MB  %s' "$svc" "$((SECONDS - t))" "$((size / 1000000))" "${IMAGE_REPO_PREFIX}$svc:dev, :$version")"
}

check_sources() {
  local svc problems=()
  for svc in "$@"; do
    [[ -f $IMAGES_DOCKER_DIR/$svc.Dockerfile ]] || problems+=("no deploy/docker/$svc.Dockerfile")
    grep -qx "!$svc/" "$IMAGES_ROOT/.dockerignore" || problems+=(".dockerignore does not let $svc/ into the build context")
  done
  ((${#problems[@]} == 0)) || die "$(printf '%s; ' "${problems[@]}")"
}

main() {
  engine_detect || { echo "$PFX no container engine answers (podman or docker; make deps installs podman)" >&2; exit 3; }
  mkdir -p "$IMAGES_CACHE"
  if [[ $ENGINE == podman ]]; then ensure_base; fi
  [[ ${1:-} == base ]] && return 0
  local services svc t=$SECONDS
  mapfile -t services < <(images_services)
  check_sources "${services[@]}"
  say "building ${#services[@]} images with $ENGINE: ${services[*]}"
  for svc in "${services[@]}"; do build_one "$svc"; done
  say "done in $((SECONDS - t))s"
}

main "$@"
