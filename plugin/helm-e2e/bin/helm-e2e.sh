#!/bin/sh
# The `helm e2e` plugin: run the helm-e2e CLI the way Helm was asked to reach the cluster.
#
# Helm consumes its global flags before calling a plugin and hands them over as environment variables:
#   -n/--namespace  -> HELM_NAMESPACE (always set: the flag, else the context's namespace, else "default")
#   --kube-context  -> HELM_KUBECONTEXT (empty unless given)
#   --kubeconfig    -> KUBECONFIG
# The CLI: $HELM_E2E_VENV/bin/python -m helm_e2e.cli when HELM_E2E_VENV is set, else `helm-e2e` on PATH.
# Exit codes are the CLI's (wait: 0 Succeeded, 1 Failed, 2 otherwise); this wrapper's own errors exit 2.
set -eu

die() {
  printf 'helm e2e: error: %s\n' "$*" >&2
  exit 2
}

# Options helm-e2e cannot honour: refusing is safer than silently talking to the cluster as someone else.
for var in HELM_KUBETOKEN HELM_KUBEASUSER HELM_KUBEASGROUPS HELM_KUBEAPISERVER HELM_KUBECAFILE \
  HELM_KUBETLS_SERVER_NAME; do
  eval "value=\${$var:-}"
  [ -z "$value" ] || die "$var is set (a helm --kube-* flag); helm-e2e only reads a kubeconfig context: use --kube-context"
done
[ "${HELM_KUBEINSECURE_SKIP_TLS_VERIFY:-false}" = false ] ||
  die "--kube-insecure-skip-tls-verify is not supported; put insecure-skip-tls-verify in a kubeconfig context"

# Does the caller already name a namespace (after `--`, or as -nNS, which Helm does not consume)?
has_namespace=false
for arg in "$@"; do
  case $arg in
    -n | -n?* | --namespace | --namespace=*) has_namespace=true ;;
  esac
done

# The command line, rebuilt in "$@": CLI, subcommand, [--namespace NS], the caller's other arguments.
sub=${1-}
[ $# -eq 0 ] || shift
case $sub in
  "" | -* | run)
    # no subcommand, a global option (--help) or the operator itself: nothing namespaced to add
    ns_flag=false ;;
  *) ns_flag=true ;;
esac
if [ "$ns_flag" = true ] && [ "$has_namespace" = false ] && [ -n "${HELM_NAMESPACE:-}" ]; then
  set -- --namespace "$HELM_NAMESPACE" "$@"
fi
[ -z "$sub" ] || set -- "$sub" "$@"
if [ -n "${HELM_E2E_VENV:-}" ]; then
  [ -x "$HELM_E2E_VENV/bin/python" ] || die "HELM_E2E_VENV=$HELM_E2E_VENV has no bin/python"
  set -- "$HELM_E2E_VENV/bin/python" -m helm_e2e.cli "$@"
elif command -v helm-e2e >/dev/null 2>&1; then
  set -- helm-e2e "$@"
else
  die "no helm-e2e on PATH (pip install helm-e2e), and HELM_E2E_VENV is not set"
fi

[ "${HELM_DEBUG:-false}" != true ] || printf 'helm e2e: running: %s\n' "$*" >&2

if [ -z "${HELM_KUBECONTEXT:-}" ]; then
  exec "$@"
fi

# --kube-context: helm-e2e uses the kubeconfig's current context, so hand it a private one-context copy.
command -v kubectl >/dev/null 2>&1 || die "--kube-context needs kubectl on PATH"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/helm-e2e.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
(umask 077 && kubectl config view --raw --minify --flatten --context "$HELM_KUBECONTEXT" >"$tmp/kubeconfig") ||
  die "cannot read kube context $HELM_KUBECONTEXT"
KUBECONFIG=$tmp/kubeconfig
export KUBECONFIG
set +e
"$@"
rc=$?
exit "$rc"
