#!/usr/bin/env bash
# The local cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok as processes
# on 127.0.0.1 (kwokctl --runtime binary, every binary pointed at our cached builds so nothing downloads),
# plus one Ready kwok node. Idempotent: `up` reuses a running cluster and restarts a stopped one.
#
# Usage: hack/cluster.sh up | down | env | status
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/versions.sh
source "$here/versions.sh"

CLUSTER_NAME=${KWOK_CLUSTER_NAME:-helm-e2e}  # not HELM_E2E_*: that prefix is the operator's settings
export KWOK_WORKDIR=$HELM_E2E_CACHE/kwok
export KWOK_KUBE_VERSION=$KUBE_VERSION
export KWOK_KUBECTL_BINARY=$HELM_E2E_BIN/current/kubectl
KUBECONFIG_PATH=$HELM_E2E_CACHE/kubeconfig
STATE=$HELM_E2E_CACHE/sim                 # default pod log file lives here
NODES=${HELM_E2E_KWOK_NODES:-1}
bin=$HELM_E2E_BIN/current

log() { printf '[cluster] %s\n' "$*" >&2; }
kctl() { "$bin/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

healthy() { [ -f "$KUBECONFIG_PATH" ] && kctl get --raw /readyz >/dev/null 2>&1; }

write_log_config() {
  mkdir -p "$STATE"
  # A CRI-format log served for every container that has no Logs object of its own; tests create
  # kwok `Logs` objects (named like the pod) to serve specific output.
  printf '%s stdout F %s\n' "1970-01-01T00:00:00.000000000Z" "simulated by kwok: no log configured for this pod" \
    >"$STATE/default.log"
  cat >"$STATE/logs.yaml" <<YAML
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: default-logs
spec:
  selector: {}
  logs:
  - logsFile: $STATE/default.log
YAML
  # kwok simulates only the nodes annotated as fake, so a real kubelet (make node-up) can join beside
  # them; the apiserver authenticates to that kubelet (logs, exec) with the admin client certificate.
  local pki=$KWOK_WORKDIR/clusters/$CLUSTER_NAME/pki
  cat >"$STATE/components.yaml" <<YAML
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
componentsPatches:
- name: kwok-controller
  extraArgs:
  - {key: manage-all-nodes, value: "false"}
  - {key: manage-nodes-with-annotation-selector, value: kwok.x-k8s.io/node=fake}
- name: kube-apiserver
  extraArgs:
  - {key: kubelet-client-certificate, value: $pki/admin.crt}
  - {key: kubelet-client-key, value: $pki/admin.key}
  - {key: kubelet-preferred-address-types, value: "InternalIP,Hostname"}
YAML
}

ensure_nodes() {
  for i in $(seq 0 $((NODES - 1))); do
    cat <<YAML | kctl apply -f - >/dev/null
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
YAML
  done
  kctl wait --for=condition=Ready node -l type=kwok --timeout=60s >/dev/null
  # the node lifecycle controller lifts its not-ready taint a moment after Ready: pods need it gone
  for _ in $(seq 1 120); do
    [ -z "$(kctl get nodes -l type=kwok -o jsonpath='{.items[*].spec.taints}')" ] && return 0
    sleep 0.5
  done
  log "kwok node still tainted after 60s: $(kctl get nodes -l type=kwok -o jsonpath='{.items[*].spec.taints}')"
  return 1
}

up() {
  local t0=$SECONDS
  "$here/build-binaries.sh"
  if healthy; then
    log "cluster $CLUSTER_NAME already running"
  elif [ -d "$KWOK_WORKDIR/clusters/$CLUSTER_NAME" ] && "$bin/kwokctl" start cluster --name "$CLUSTER_NAME" >&2 && healthy; then
    log "restarted stopped cluster $CLUSTER_NAME"
  else
    [ -d "$KWOK_WORKDIR/clusters/$CLUSTER_NAME" ] && "$bin/kwokctl" delete cluster --name "$CLUSTER_NAME" >&2 || true
    write_log_config
    log "creating cluster $CLUSTER_NAME (kube $KUBE_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION)"
    "$bin/kwokctl" create cluster --name "$CLUSTER_NAME" --runtime binary \
      --kubeconfig "$KUBECONFIG_PATH" \
      --etcd-binary "$bin/etcd" \
      --kube-apiserver-binary "$bin/kube-apiserver" \
      --kube-controller-manager-binary "$bin/kube-controller-manager" \
      --kube-scheduler-binary "$bin/kube-scheduler" \
      --kwok-controller-binary "$bin/kwok" \
      --enable-crds Logs,ClusterLogs \
      --config "$here/kwok/stages.yaml" \
      --config "$STATE/logs.yaml" \
      --config "$STATE/components.yaml" \
      --wait 120s >&2
  fi
  ensure_nodes
  log "ready in $((SECONDS - t0))s; use it with: eval \"\$(make -s cluster-env)\""
}

down() {
  if [ -d "$KWOK_WORKDIR/clusters/$CLUSTER_NAME" ]; then
    "$bin/kwokctl" delete cluster --name "$CLUSTER_NAME" >&2
  fi
  rm -f "$KUBECONFIG_PATH"
  log "cluster $CLUSTER_NAME removed"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  env) printf 'export KUBECONFIG=%q\nexport PATH=%q:"$PATH"\n' "$KUBECONFIG_PATH" "$bin" ;;
  status) healthy && { kctl version; kctl get nodes; } || { echo "cluster $CLUSTER_NAME is not running"; exit 1; } ;;
  *) echo "usage: $0 up|down|env|status" >&2; exit 2 ;;
esac
