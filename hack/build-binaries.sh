#!/usr/bin/env bash
# Builds (once) every binary the local cluster needs from the Go module proxy and caches it as
# $HELM_E2E_BIN/<component>-<version>. A cached binary is never rebuilt; `current/` holds unversioned
# symlinks so PATH can point at one directory.
#
# Usage: hack/build-binaries.sh [component ...]   (default: all control-plane components + tools;
#        `node` = kubelet, kube-proxy, containerd, its runc shim, ctr and crictl for make node-up;
#        helm4 = Helm 4 (HELM4_VERSION) as current/helm4, the second helm the integration tests run with;
#        versitygw = the S3-compatible server the integration tests start, built with the default set;
#        coredns = the real node's cluster DNS, built with `node`)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/versions.sh
source "$here/versions.sh"

export GOFLAGS="-mod=mod -buildvcs=false"
export GOTOOLCHAIN=local
export CGO_ENABLED=0
mkdir -p "$HELM_E2E_BIN/current" "$HELM_E2E_CACHE/work"
# One build at a time per cache: two at once (make demo beside make node-up, parallel test sessions on a
# fresh machine) wrote the same <bin>.tmp and one failed at its mv; the second now waits and finds it cached.
exec 9>"$HELM_E2E_CACHE/.build.lock"
flock 9

log() { printf '[build] %s\n' "$*" >&2; }

link_current() { ln -sfn "../$1-$2" "$HELM_E2E_BIN/current/$1"; }

have() { [ -x "$HELM_E2E_BIN/$1-$2" ]; }

# A throwaway module that requires k8s.io/kubernetes and replaces each k8s.io/<staging> v0.0.0
# requirement with the published staging module of the same release: k8s.io/kubernetes's own go.mod
# points them at ./staging, and replace directives of a dependency are ignored.
kube_wrapper() {
  local dir=$HELM_E2E_CACHE/work/kube-$KUBE_VERSION
  if [ ! -f "$dir/.ready" ]; then
    log "preparing wrapper module for k8s.io/kubernetes $KUBE_VERSION"
    rm -rf "$dir" && mkdir -p "$dir"
    local mod
    mod=$(curl -fsSL "https://proxy.golang.org/k8s.io/kubernetes/@v/$KUBE_VERSION.mod") \
      || mod=$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" >/dev/null && \
               cat "$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$KUBE_VERSION.mod")
    {
      echo "module helm-e2e.dev/kube-build"
      echo "go 1.24.0"
      echo "require k8s.io/kubernetes $KUBE_VERSION"
      echo "$mod" | awk -v v="$KUBE_STAGING_VERSION" \
        '$2 == "=>" && $3 ~ /^\.\/staging\// { print "replace " $1 " => " $1 " " v }'
    } >"$dir/go.mod"
    (cd "$dir" && go mod download k8s.io/kubernetes && touch .ready)
  fi
  echo "$dir"
}

kube_ldflags() {
  local major minor
  major=$(echo "${KUBE_VERSION#v}" | cut -d. -f1)
  minor=$(echo "${KUBE_VERSION#v}" | cut -d. -f2)
  local flags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags="$flags -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    flags="$flags -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}

build_kube() {  # component
  local c=$1
  have "$c" "$KUBE_VERSION" && { link_current "$c" "$KUBE_VERSION"; return; }
  local dir; dir=$(kube_wrapper)
  log "building $c $KUBE_VERSION (cold builds take minutes)"
  local t0=$SECONDS
  (cd "$dir" && go build -trimpath -ldflags "$(kube_ldflags)" -o "$HELM_E2E_BIN/$c-$KUBE_VERSION.tmp" "k8s.io/kubernetes/cmd/$c")
  mv "$HELM_E2E_BIN/$c-$KUBE_VERSION.tmp" "$HELM_E2E_BIN/$c-$KUBE_VERSION"
  log "built $c in $((SECONDS - t0))s"
  link_current "$c" "$KUBE_VERSION"
}

build_etcd() {
  have etcd "$ETCD_VERSION" && { link_current etcd "$ETCD_VERSION"; return; }
  local dir=$HELM_E2E_CACHE/work/etcd-$ETCD_VERSION
  rm -rf "$dir" && mkdir -p "$dir"
  # server/v3's go.mod replaces its sibling modules with ../ paths; pin them to the same tag instead.
  cat >"$dir/go.mod" <<MOD
module helm-e2e.dev/etcd-build
go 1.24.0
require go.etcd.io/etcd/server/v3 $ETCD_VERSION
replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 $ETCD_VERSION
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 $ETCD_VERSION
)
MOD
  log "building etcd $ETCD_VERSION"
  local t0=$SECONDS
  (cd "$dir" && go build -trimpath -ldflags "-s -w" -o "$HELM_E2E_BIN/etcd-$ETCD_VERSION.tmp" go.etcd.io/etcd/server/v3)
  mv "$HELM_E2E_BIN/etcd-$ETCD_VERSION.tmp" "$HELM_E2E_BIN/etcd-$ETCD_VERSION"
  log "built etcd in $((SECONDS - t0))s"
  link_current etcd "$ETCD_VERSION"
}

# CoreDNS with only the plugins the real node's Corefile uses (hack/node.sh): the stock build also compiles
# every cloud provider's SDK (route53, azure, clouddns, ...) and tracing, ~1,400 packages against ~800, for
# nothing the node needs. A wrapper main imports coremain and those plugins, as an external-plugin build does.
build_coredns() {
  have coredns "$COREDNS_VERSION" && { link_current coredns "$COREDNS_VERSION"; return; }
  local dir=$HELM_E2E_CACHE/work/coredns-$COREDNS_VERSION plugin
  rm -rf "$dir" && mkdir -p "$dir"
  printf 'module helm-e2e.dev/coredns-build\ngo 1.26.0\nrequire github.com/coredns/coredns %s\n' \
    "$COREDNS_VERSION" >"$dir/go.mod"
  {
    echo "package main"
    echo "import ("
    echo '	"github.com/coredns/coredns/coremain"'
    for plugin in bind cache errors forward kubernetes ready; do
      echo "	_ \"github.com/coredns/coredns/plugin/$plugin\""
    done
    echo ")"
    echo "func main() { coremain.Run() }"
  } >"$dir/main.go"
  log "building coredns $COREDNS_VERSION"
  local t0=$SECONDS
  (cd "$dir" && go build -trimpath -ldflags "-s -w" -o "$HELM_E2E_BIN/coredns-$COREDNS_VERSION.tmp" .)
  mv "$HELM_E2E_BIN/coredns-$COREDNS_VERSION.tmp" "$HELM_E2E_BIN/coredns-$COREDNS_VERSION"
  log "built coredns in $((SECONDS - t0))s"
  link_current coredns "$COREDNS_VERSION"
}

go_install() {  # name version package ldflags [built-binary-name]
  local name=$1 version=$2 pkg=$3 ldflags=${4:-} built=${5:-$1}
  have "$name" "$version" && { link_current "$name" "$version"; return; }
  log "building $name $version"
  local t0=$SECONDS gobin=$HELM_E2E_CACHE/work/gobin-$name-$version
  rm -rf "$gobin"
  GOFLAGS=-buildvcs=false GOBIN=$gobin go install -trimpath -ldflags "-s -w $ldflags" "$pkg@$version"
  mv "$gobin/$built" "$HELM_E2E_BIN/$name-$version"
  rm -rf "$gobin"
  log "built $name in $((SECONDS - t0))s"
  link_current "$name" "$version"
}

build_one() {
  case $1 in
    kube-apiserver|kube-controller-manager|kube-scheduler|kubectl|kubelet|kube-proxy) build_kube "$1" ;;
    etcd) build_etcd ;;
    kwok) go_install kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok \
            "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" ;;
    kwokctl) go_install kwokctl "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwokctl \
            "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" ;;
    helm) go_install helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm \
            "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" ;;
    helm4) go_install helm4 "$HELM4_VERSION" helm.sh/helm/v4/cmd/helm \
            "-X helm.sh/helm/v4/internal/version.version=$HELM4_VERSION" helm ;;  # tests: HELM_E2E_TEST_HELM=helm4
    containerd|containerd-shim-runc-v2|ctr)
      go_install "$1" "$CONTAINERD_VERSION" "github.com/containerd/containerd/v2/cmd/$1" \
        "-X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" ;;
    crictl) go_install crictl "$CRICTL_VERSION" sigs.k8s.io/cri-tools/cmd/crictl \
        "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" ;;
    coredns) build_coredns ;;
    versitygw) go_install versitygw "$VERSITYGW_VERSION" github.com/versity/versitygw/cmd/versitygw \
        "-X main.Version=$VERSITYGW_VERSION" ;;
    node) for c in kubelet kube-proxy containerd containerd-shim-runc-v2 ctr crictl coredns; do build_one "$c"; done ;;
    *) echo "unknown component: $1" >&2; exit 2 ;;
  esac
}

components=("$@")
[ ${#components[@]} -gt 0 ] || components=(etcd helm helm4 kwok kwokctl kubectl kube-apiserver kube-controller-manager kube-scheduler versitygw)
t_all=$(date +%s)
for c in "${components[@]}"; do build_one "$c"; done
log "all binaries ready in $HELM_E2E_BIN/current ($(( $(date +%s) - t_all ))s)"
