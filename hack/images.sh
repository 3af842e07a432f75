#!/usr/bin/env bash
# Builds the project's container images without a registry or a Docker engine and saves each as an
# archive in $HELM_E2E_CACHE/images/<name>.tar, which hack/node.sh imports into containerd (k8s.io).
#
#   pause          a static C program (hack/node/pause.c) in a hand-written one-layer OCI archive
#   busybox        Debian's busybox-static + applet links, the same way (the example chart's test hook)
#   python base    debootstrap --variant=minbase bookworm + python3/pip, committed with buildah as
#                  localhost/python:3.11-bookworm: the stand-in for python:3.11-slim-bookworm
#   jwt-setup, pytest-runner, demo-service, demo-e2e, helm-e2e (the operator)
#                  the project's own Dockerfiles, built by Debian's buildah (--isolation chroot) with the
#                  local base passed as BASE_IMAGE / PYTHON_IMAGE, exactly as a user with a mirror would
#
# An image is rebuilt only when its inputs change (a hash of its build context, Dockerfile and base).
# Usage: hack/images.sh [all | pause]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=hack/versions.sh
source "$here/versions.sh"

OUT=$HELM_E2E_CACHE/images
BUILDAH_ROOT=$HELM_E2E_CACHE/buildah          # buildah's image store: kept, like the Go build cache
BUILDAH_RUNROOT=/run/helm-e2e-buildah
BASE=localhost/python:3.11-bookworm
BASE_PACKAGES=python3,python3-pip,python3-venv,python-is-python3,ca-certificates
DEBIAN_MIRROR=${HELM_E2E_DEBIAN_MIRROR:-http://deb.debian.org/debian}
HOST_CA_BUNDLE=${HELM_E2E_BUILD_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
DEMO_TAGS=(1.0.0 1.1.0 1.2.0)                   # the example chart's versions used by the demo and tests
mkdir -p "$OUT"

log() { printf '[images] %s\n' "$*" >&2; }
bah() { buildah --root "$BUILDAH_ROOT" --runroot "$BUILDAH_RUNROOT" --storage-driver overlay "$@"; }

inputs_hash() {  # paths... → a hash of every file's path and content
  (cd "$root" && find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z \
    | xargs -0 sha256sum) | sha256sum | cut -c1-16
}

fresh() {  # name hash → true if the archive exists and was built from these inputs
  [ -f "$OUT/$1.tar" ] && [ "$(cat "$OUT/$1.hash" 2>/dev/null)" = "$2" ]
}

pause_image() {
  local hash; hash=$(inputs_hash hack/node/pause.c hack/node/oci_image.py)
  fresh pause "$hash" && return 0
  local work; work=$(mktemp -d)
  gcc -Os -static -o "$work/pause" "$here/node/pause.c"
  strip "$work/pause"
  python3 "$here/node/oci_image.py" --name localhost/pause:3.10 --out "$OUT/pause.tar.tmp" \
    --entrypoint /pause --file "$work/pause:/pause:0755" >/dev/null
  mv "$OUT/pause.tar.tmp" "$OUT/pause.tar" && echo "$hash" >"$OUT/pause.hash"
  rm -rf "$work"
  log "built localhost/pause:3.10 ($(du -h "$OUT/pause.tar" | cut -f1))"
}

busybox_image() {  # Debian's busybox-static with its applet links: the example chart's test hook image
  local bb=/bin/busybox
  [ -x "$bb" ] || { log "busybox-static is missing: apt-get install busybox-static"; return 1; }
  local hash; hash=$( (sha256sum "$bb"; inputs_hash hack/node/oci_image.py hack/images.sh) | sha256sum | cut -c1-16)
  fresh busybox "$hash" && return 0
  local links=()
  for applet in $("$bb" --list); do [ "$applet" = busybox ] || links+=(--symlink "/bin/$applet:busybox"); done
  python3 "$here/node/oci_image.py" --name localhost/busybox:1.36 --out "$OUT/busybox.tar.tmp" \
    --entrypoint /bin/sh --file "$bb:/bin/busybox:0755" "${links[@]}" >/dev/null
  mv "$OUT/busybox.tar.tmp" "$OUT/busybox.tar" && echo "$hash" >"$OUT/busybox.hash"
  log "built localhost/busybox:1.36 from Debian's busybox-static ($(du -h "$OUT/busybox.tar" | cut -f1))"
}

python_base() {
  local hash; hash=$(echo "$BASE_PACKAGES $DEBIAN_MIRROR bookworm" | sha256sum | cut -c1-16)
  if [ "$(cat "$OUT/base.hash" 2>/dev/null)" = "$hash" ] && bah inspect --type image "$BASE" >/dev/null 2>&1; then
    return 0
  fi
  local t0=$SECONDS rootfs=$HELM_E2E_CACHE/work/debootstrap-bookworm
  command -v debootstrap >/dev/null || { log "debootstrap is missing: apt-get install debootstrap"; return 1; }
  rm -rf "$rootfs"
  log "debootstrap bookworm (minbase + $BASE_PACKAGES) from $DEBIAN_MIRROR"
  debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$rootfs" "$DEBIAN_MIRROR" \
    >"$HELM_E2E_CACHE/work/debootstrap.log" 2>&1 \
    || { tail -20 "$HELM_E2E_CACHE/work/debootstrap.log" >&2; return 1; }
  # Behave like the official python image: pip installs into the system interpreter (PEP 668's
  # marker is Debian's policy for hosts, not for single-purpose images); no caches in the layer.
  rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
    "$rootfs"/usr/share/man/* "$rootfs"/var/log/*
  tar -C "$rootfs" -cf "$HELM_E2E_CACHE/work/base.tar" .
  local ctr; ctr=$(bah from scratch)
  bah add "$ctr" "$HELM_E2E_CACHE/work/base.tar" / >/dev/null
  bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
    --cmd python3 --label org.opencontainers.image.description="debootstrap bookworm minbase + python3" "$ctr"
  bah commit --rm "$ctr" "$BASE" >/dev/null
  rm -rf "$rootfs" "$HELM_E2E_CACHE/work/base.tar"
  echo "$hash" >"$OUT/base.hash"
  log "built $BASE in $((SECONDS - t0))s"
}

build() {  # name tag context [build-arg ...]: the project's Dockerfile in <context>
  local name=$1 tag=$2 context=$3; shift 3
  local sources=("$context")  # the repository root: only what its Dockerfile copies
  [ "$context" != . ] || sources=(Dockerfile pyproject.toml README.md operator bin)
  local deps=""  # a base built here (BASE_IMAGE=localhost/<x>:...) rebuilds what is built on it
  for a in "$@"; do
    local ref=${a#*=}; [[ $ref == localhost/* ]] || continue
    ref=${ref#localhost/}; deps+=" $(cat "$OUT/${ref%%:*}.hash" 2>/dev/null || cat "$OUT/base.hash")"
  done
  local hash; hash=$(echo "$(inputs_hash "${sources[@]}") $(cat "$OUT/base.hash")$deps $* $tag" | sha256sum | cut -c1-16)
  fresh "$name" "$hash" && return 0
  local t0=$SECONDS args=()
  for a in "$@"; do args+=(--build-arg "$a"); done
  # RUN steps fetch from PyPI through whatever TLS this host trusts (an egress proxy's CA, say): lend
  # them the host's CA bundle for the build only; it never becomes part of an image layer.
  [ -f "$HOST_CA_BUNDLE" ] && args+=(--volume "$HOST_CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro")
  log "buildah bud $context → localhost/$name:$tag"
  (cd "$root" && bah bud --isolation chroot --pull=false --layers=false "${args[@]}" \
    -f "$context/Dockerfile" -t "localhost/$name:$tag" "$context") >"$HELM_E2E_CACHE/work/build-$name.log" 2>&1 \
    || { tail -30 "$HELM_E2E_CACHE/work/build-$name.log" >&2; return 1; }
  rm -f "$OUT/$name.tar"
  bah push "localhost/$name:$tag" "docker-archive:$OUT/$name.tar.tmp:localhost/$name:$tag" >/dev/null 2>&1
  mv "$OUT/$name.tar.tmp" "$OUT/$name.tar" && echo "$hash" >"$OUT/$name.hash"
  log "built localhost/$name:$tag in $((SECONDS - t0))s ($(du -h "$OUT/$name.tar" | cut -f1))"
}

retag() {  # name tag... : one archive that carries every tag (the example chart's versions)
  local name=$1; shift
  local src=localhost/$name:dev
  local refs=() hash; hash=$(cat "$OUT/$name.hash")
  [ -f "$OUT/$name-tags.tar" ] && [ "$(cat "$OUT/$name-tags.hash" 2>/dev/null)" = "$hash $*" ] && return 0
  for t in "$@"; do bah tag "$src" "localhost/$name:$t"; refs+=("localhost/$name:$t"); done
  rm -f "$OUT/$name-tags.tar"
  # docker-archive with several names: one copy of the layers, every tag in the manifest
  bah push "$src" "docker-archive:$OUT/$name-tags.tar.tmp:${refs[0]}" >/dev/null 2>&1
  python3 - "$OUT/$name-tags.tar.tmp" "${refs[@]}" <<'PY'
import json, sys, tarfile, io, shutil
path, refs = sys.argv[1], sys.argv[2:]
out = path + ".2"
with tarfile.open(path) as src, tarfile.open(out, "w") as dst:
    for m in src.getmembers():
        data = src.extractfile(m).read() if m.isfile() else None
        if m.name == "manifest.json":
            manifest = json.loads(data)
            manifest[0]["RepoTags"] = refs
            data = json.dumps(manifest).encode()
            m.size = len(data)
        dst.addfile(m, io.BytesIO(data) if data is not None else None)
shutil.move(out, path)
PY
  mv "$OUT/$name-tags.tar.tmp" "$OUT/$name-tags.tar" && echo "$hash $*" >"$OUT/$name-tags.hash"
}

version_of() { sed -n 's/^version = "\(.*\)"/\1/p' "$root/$1" | head -1; }

t0=$SECONDS
pause_image
if [ "${1:-all}" = all ]; then
  command -v buildah >/dev/null || { log "buildah is missing: apt-get install buildah"; exit 1; }
  busybox_image
  python_base
  build jwt-setup "$(version_of images/jwt-setup/pyproject.toml)" images/jwt-setup "BASE_IMAGE=$BASE"
  build pytest-runner "$(version_of images/pytest-runner/pyproject.toml)" images/pytest-runner "BASE_IMAGE=$BASE"
  build demo-service dev images/demo-service "BASE_IMAGE=$BASE"
  build demo-e2e dev images/demo-e2e "RUNNER_IMAGE=localhost/pytest-runner:$(version_of images/pytest-runner/pyproject.toml)"
  # the operator runs `helm rollback` (rollback on failure): it carries the helm built by `make binaries`
  install -m 0755 "$HELM_E2E_CACHE/bin/current/helm" "$root/bin/helm"
  build helm-e2e "$(version_of pyproject.toml)" . "PYTHON_IMAGE=$BASE" "HELM_BINARY=bin/helm"
  retag demo-service "${DEMO_TAGS[@]}"
  retag demo-e2e "${DEMO_TAGS[@]}"
fi
log "images ready in $OUT ($((SECONDS - t0))s)"
