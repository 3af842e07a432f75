# Pinned versions of everything hack/ builds from the Go module proxy.
# Changing one of these makes the next build produce a new cached binary; old ones stay until pruned.
KUBE_VERSION=v1.34.4          # kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (and kubelet)
KUBE_STAGING_VERSION=v0.34.4  # k8s.io/<staging> modules matching KUBE_VERSION
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.19.5
HELM4_VERSION=v4.3.1          # Helm 4: the integration tests' second helm (make integration-helm4), golden data
# the real node (make node-up): kubelet and kube-proxy come from KUBE_VERSION
CONTAINERD_VERSION=v2.2.9     # v2.3.x needs go >= 1.26.8 exactly; v2.2 builds with any go >= 1.25
CRICTL_VERSION=v1.34.0        # cri-tools, matching the kube minor
COREDNS_VERSION=v1.15.0       # the node's cluster DNS; the newest release, its go.mod asks go >= 1.26.0
# the test harness's S3-compatible server (tests/integration: s3_server), an S3 gateway over a directory
VERSITYGW_VERSION=v1.8.0

HELM_E2E_CACHE=${HELM_E2E_CACHE:-$HOME/.cache/helm-e2e}
HELM_E2E_BIN=$HELM_E2E_CACHE/bin
