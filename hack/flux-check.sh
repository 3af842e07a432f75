#!/usr/bin/env bash
# Hand check of helm-e2e's Flux support (docs/gitops.md) against the REAL Flux helm-controller, out of cluster,
# on the local cluster (make cluster-up). Not part of CI. Builds/caches helm-controller, applies its CRDs,
# serves charts as ExternalArtifacts from a local http.server, starts one helm-controller and one operator,
# runs the stories, prints the numbers, and cleans up (its namespaces flux-hc-*, its processes).
#
#   hack/flux-check.sh            # everything
#   FLUX_CHECK_KEEP=1 hack/flux-check.sh   # leave namespaces and processes up for a look
#
# Needs: the fetched helm-controller git dir (HC_GIT_DIR, the `fetch` of github:fluxcd/helm-controller) for a
# cold build, and source-controller's git dir (SC_GIT_DIR) for the ExternalArtifact CRD (or SC_CRD=<file>).
#
# Never run by CI (.ci/run, make test): it builds a Go binary and takes ~5.5 min. It holds the integration-test
# lock (FLUX_CHECK_LOCK) throughout: the Flux CRDs it applies and may delete are cluster-wide, and
# tests/integration/test_gitops.py applies a stand-in of the same HelmRelease CRD.
set -euo pipefail
if [ -z "${FLUX_CHECK_LOCKED:-}" ]; then
  exec env FLUX_CHECK_LOCKED=1 flock "${FLUX_CHECK_LOCK:-/tmp/helm-e2e-integration.lock}" bash "$0" "$@"
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
eval "$(make -s cluster-env)"
HC_VERSION=${HC_VERSION:-v1.6.3}
HC_GIT_DIR=${HC_GIT_DIR:-/work/.mirror/fluxcd+helm-controller/repo}
SC_GIT_DIR=${SC_GIT_DIR:-/work/.mirror/fluxcd+source-controller/repo}
SC_VERSION=${SC_VERSION:-v1.9.0}
BIN=$HOME/.cache/helm-e2e/bin
HC_BIN=${HC_BIN:-$BIN/helm-controller-$HC_VERSION}
WORK=${FLUX_CHECK_WORK:-/tmp/flux-check}
HTTP_PORT=${HTTP_PORT:-18480} HC_METRICS=${HC_METRICS:-18481} HC_HEALTH=${HC_HEALTH:-18482} SMTP_PORT=${SMTP_PORT:-18425}
WINDOW=${WINDOW:-180}   # seconds over which Helm revisions are counted after the failing upgrade
HELM=$BIN/current/helm
NS_A=flux-hc-a NS_B=flux-hc-b NS_D=flux-hc-d NS_E=flux-hc-e
log() { printf '[flux-check %s] %s\n' "$(date +%T)" "$*" >&2; }
mkdir -p "$WORK"

# ---------------------------------------------------------------- build (cached)
build_hc() {
  [ -x "$HC_BIN" ] && { log "helm-controller cached: $HC_BIN"; return; }
  log "building helm-controller $HC_VERSION"
  local src=$WORK/hc-src t0=$SECONDS
  rm -rf "$src" && mkdir -p "$src"
  git --git-dir="$HC_GIT_DIR" archive "$HC_VERSION" | tar -x -C "$src"
  # the proxy refuses Flux's Helm fork (v4.2.4-flux.1) and chartutil v1.27.1: upstream Helm v4.2.4, chartutil v1.27.2
  (cd "$src" && go mod edit -dropreplace=helm.sh/helm/v4 -replace=helm.sh/helm/v4=helm.sh/helm/v4@v4.2.4 \
      -require=github.com/fluxcd/pkg/chartutil@v1.27.2 &&
    GOFLAGS=-mod=mod flock "$HOME/.cache/helm-e2e/.hc-build.lock" go build -o "$HC_BIN.tmp" . && mv "$HC_BIN.tmp" "$HC_BIN")
  log "built in $((SECONDS - t0))s"
}

FLUX_CRDS="helmreleases.helm.toolkit.fluxcd.io externalartifacts.source.toolkit.fluxcd.io helmcharts.source.toolkit.fluxcd.io ocirepositories.source.toolkit.fluxcd.io"
CREATED_CRDS=""
crds() {
  kubectl apply -f "$ROOT/crds" >/dev/null
  # Flux's CRDs are ours to remove at the end only when this check created them (a stand-in HelmRelease CRD of
  # tests/data/crds, if present, is replaced by the real one and left so)
  for c in $FLUX_CRDS; do kubectl get crd "$c" >/dev/null 2>&1 || CREATED_CRDS="$CREATED_CRDS $c"; done
  git --git-dir="$HC_GIT_DIR" show "$HC_VERSION:config/crd/bases/helm.toolkit.fluxcd.io_helmreleases.yaml" >"$WORK/hr-crd.yaml"
  if [ -n "${SC_CRD:-}" ]; then cp "$SC_CRD" "$WORK/ea-crd.yaml"; else
    # helm-controller's manager also watches HelmChart and OCIRepository: it waits for their CRDs to start
    for k in externalartifacts helmcharts ocirepositories; do
      git --git-dir="$SC_GIT_DIR" show "$SC_VERSION:config/crd/bases/source.toolkit.fluxcd.io_$k.yaml"; echo ---
    done >"$WORK/ea-crd.yaml"
  fi
  kubectl apply --server-side --force-conflicts -f "$WORK/hr-crd.yaml" -f "$WORK/ea-crd.yaml" >/dev/null
  kubectl wait --for=condition=Established crd/helmreleases.helm.toolkit.fluxcd.io \
    crd/externalartifacts.source.toolkit.fluxcd.io crd/e2eruns.helm-e2e.dev crd/e2esuites.helm-e2e.dev --timeout=60s >/dev/null
}

# ---------------------------------------------------------------- charts: webapp <version> <test exit code> <commit>
chart() {
  local version=$1 code=$2 commit=$3 dir=$WORK/charts/webapp-$1
  rm -rf "$dir" && mkdir -p "$dir/templates"
  cat >"$dir/Chart.yaml" <<EOF
apiVersion: v2
name: webapp
version: $version
appVersion: "1.0.0"
annotations:
  org.opencontainers.image.revision: "main@sha1:$commit"
EOF
  cat >"$dir/templates/configmap.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata: {name: {{ .Release.Name }}-config}
data: {version: {{ .Chart.Version | quote }}}
EOF
  cat >"$dir/templates/test-pod.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-smoke
  annotations:
    helm.sh/hook: test
    helm.sh/hook-delete-policy: before-hook-creation
    sim.helm-e2e.dev/exit-code: "$code"
    sim.helm-e2e.dev/duration: "3s"
spec:
  restartPolicy: Never
  containers: [{name: smoke, image: busybox, command: ["true"]}]
EOF
  "$HELM" package "$dir" -d "$WORK/serve" >/dev/null
}
SHA1=1111111111111111111111111111111111111111 SHA2=2222222222222222222222222222222222222222

# point ExternalArtifact <ns>/web-chart at webapp-<version>.tgz (the status a source controller writes)
artifact() {
  local ns=$1 version=$2 f=$WORK/serve/webapp-$2.tgz
  local digest; digest=$(sha256sum "$f" | cut -d' ' -f1)
  kubectl apply -n "$ns" -f - >/dev/null <<EOF
apiVersion: source.toolkit.fluxcd.io/v1
kind: ExternalArtifact
metadata: {name: web-chart}
spec: {}
EOF
  kubectl patch externalartifact web-chart -n "$ns" --subresource=status --type=merge -p "$(printf \
    '{"status":{"artifact":{"url":"http://127.0.0.1:%s/webapp-%s.tgz","digest":"sha256:%s","revision":"%s@sha256:%s","path":"webapp-%s.tgz","size":%s,"lastUpdateTime":"%s"}}}' \
    "$HTTP_PORT" "$version" "$digest" "$version" "$digest" "$version" "$(stat -c %s "$f")" "$(date -u +%FT%TZ)")" >/dev/null
}

helmrelease() {  # <ns> <test.enable true|false> [remediation: Flux rolls a failed upgrade back itself]
  local remediation=""
  [ "${3:-}" = remediate ] && remediation="  upgrade: {remediation: {retries: 1, strategy: rollback}}"
  kubectl apply -n "$1" -f - >/dev/null <<EOF
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: web}
spec:
  interval: 30s
  chartRef: {kind: ExternalArtifact, name: web-chart}
  test: {enable: $2}
$remediation
EOF
}

# ---------------------------------------------------------------- processes
PIDS=()
start_all() {
  (cd "$WORK/serve" && exec python3 -m http.server "$HTTP_PORT" --bind 127.0.0.1 >"$WORK/http.log" 2>&1) &
  PIDS+=($!)
  KUBECONFIG=$KUBECONFIG "$HC_BIN" --enable-leader-election=false --watch-all-namespaces=true \
    --metrics-addr=127.0.0.1:$HC_METRICS --health-addr=127.0.0.1:$HC_HEALTH --feature-gates=ExternalArtifact=true \
    --log-level=debug --concurrent=2 >"$WORK/helm-controller.log" 2>&1 &
  PIDS+=($!)
  rm -rf "$WORK/mail" && mkdir -p "$WORK/mail/cur" "$WORK/mail/new" "$WORK/mail/tmp"
  "$ROOT/.venv/bin/python" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$WORK/mail" \
    >"$WORK/smtp.log" 2>&1 &
  PIDS+=($!)
  # PYTHONPATH: the operator is this checkout's code, also when .venv is another checkout's (a git worktree)
  env PYTHONPATH="$ROOT/operator${PYTHONPATH:+:$PYTHONPATH}" HELM_E2E_WATCH_NAMESPACES="$NS_A,$NS_B,$NS_D,$NS_E" HELM_E2E_METRICS_PORT=0 HELM_E2E_LOG_FORMAT=console \
    HELM_E2E_RESYNC_SECONDS=2 HELM_E2E_ROLLBACK=on-failure HELM_E2E_HELM_BINARY="$(ls "$BIN"/helm4-v* | tail -1)" \
    HELM_E2E_SMTP_HOST=127.0.0.1 HELM_E2E_SMTP_PORT=$SMTP_PORT HELM_E2E_MAIL_TO=ops@example.com \
    HELM_E2E_READINESS=rollout HELM_E2E_DEFAULT_TEST_TIMEOUT_SECONDS=${TEST_TIMEOUT:-150} \
    "$ROOT/.venv/bin/helm-e2e" run >"$WORK/operator.log" 2>&1 &
  PIDS+=($!)
}
cleanup() {
  [ -n "${FLUX_CHECK_KEEP:-}" ] && { log "kept: pids ${PIDS[*]:-}, namespaces $NS_A $NS_B $NS_D $NS_E"; return; }
  for ns in $NS_A $NS_B $NS_D $NS_E; do kubectl delete helmrelease web -n "$ns" --wait=false >/dev/null 2>&1 || true; done
  sleep 5  # helm-controller uninstalls (finalizer) before it stops
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for ns in $NS_A $NS_B $NS_D $NS_E; do
    kubectl patch helmrelease web -n "$ns" --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
    kubectl delete ns "$ns" --wait=false >/dev/null 2>&1 || true
  done
  [ -n "$CREATED_CRDS" ] && { kubectl wait --for=delete ns $NS_A $NS_B $NS_D $NS_E --timeout=120s >/dev/null 2>&1 || true
    kubectl delete crd $CREATED_CRDS --ignore-not-found >/dev/null || true; }
  return 0
}

# every pod ever created in a namespace (name, creation), by watching: before-hook-creation deletes some
watch_pods() {
  kubectl get pods -n "$1" -w --output-watch-events -o custom-columns=EVENT:.type,NAME:.object.metadata.name,CREATED:.object.metadata.creationTimestamp,PHASE:.object.status.phase --no-headers \
    >"$WORK/pods-$1.log" 2>/dev/null &
  PIDS+=($!)
}
revisions() { kubectl get secrets -n "$1" -l owner=helm,name=web --no-headers 2>/dev/null | wc -l; }
wait_for() {  # <what> <timeout> <cmd...>
  local what=$1 t=$2; shift 2
  for _ in $(seq "$t"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  log "TIMEOUT waiting for $what"; return 1
}
run_phase() { kubectl get e2erun "$2" -n "$1" -o jsonpath='{.status.phase}' 2>/dev/null; }
run_done() { case $(run_phase "$1" "$2") in Succeeded | Failed | Error | Cancelled | Superseded | Refused) return 0 ;; esac; return 1; }
show_run() {
  echo "--- e2erun $1/$2"
  kubectl get e2erun "$2" -n "$1" -o yaml | "$ROOT/.venv/bin/python" -c '
import sys, yaml
r = yaml.safe_load(sys.stdin)
s, st = r["spec"], r.get("status", {})
print(yaml.safe_dump({"spec.release": {k: s["release"].get(k) for k in ("name", "revision", "chartVersion", "trigger", "commit", "managedBy")},
  "spec.tests": [{k: t.get(k) for k in ("name", "source")} for t in s.get("tests", [])],
  "status.phase": st.get("phase"),
  "status.tests": [{k: t.get(k) for k in ("name", "phase", "reason", "message", "pod", "startedAt", "completedAt")} for t in st.get("tests", [])],
  "status.conditions": [{k: c.get(k) for k in ("type", "status", "reason", "message")} for c in st.get("conditions", [])]},
  sort_keys=False, width=200))'
}
show_hr() {
  echo "--- helmrelease $1/web status (history, conditions)"
  kubectl get helmrelease web -n "$1" -o yaml | "$ROOT/.venv/bin/python" -c '
import sys, yaml
r = yaml.safe_load(sys.stdin); st = r.get("status", {})
print(yaml.safe_dump({"history": st.get("history"), "conditions": [{k: c.get(k) for k in ("type","status","reason","message")} for c in st.get("conditions", [])],
  "failures": st.get("failures"), "upgradeFailures": st.get("upgradeFailures"), "lastAttemptedReleaseAction": st.get("lastAttemptedReleaseAction")}, sort_keys=False, width=200))'
}
pods_seen() { echo "--- pods ever seen in $1 (name, created)"; awk '$1=="ADDED"{print $2, $3}' "$WORK/pods-$1.log" | sort -u; }

# ---------------------------------------------------------------- main (one block: bash reads it whole, so editing
# this file while a check runs cannot break it)
main() {
trap cleanup EXIT
build_hc
crds
rm -rf "$WORK/serve" && mkdir -p "$WORK/serve"
chart 0.1.0 0 "$SHA1"
chart 0.2.0 1 "$SHA2"
kubectl delete ns $NS_A $NS_B $NS_D $NS_E --ignore-not-found --timeout=120s >/dev/null  # a previous check's leftovers
for ns in $NS_A $NS_B $NS_D $NS_E; do kubectl create ns "$ns" >/dev/null 2>&1 || true; watch_pods "$ns"; done
start_all
sleep 3
T0=$SECONDS
# A: test.enable true, passing chart test -> Flux runs it, we record it. D: test.enable true, then a failing upgrade.
# B: test.enable false (stories c, then b: a failing chart test in the upgrade, ROLLBACK=on-failure).
for ns in $NS_A $NS_D; do artifact "$ns" 0.1.0; helmrelease "$ns" true; done
artifact "$NS_B" 0.1.0; helmrelease "$NS_B" false
# E: as D, with the remediation docs/gitops.md recommends (retries 1, strategy rollback): Flux rolls back itself
artifact "$NS_E" 0.1.0; helmrelease "$NS_E" true remediate
for ns in $NS_A $NS_B $NS_D $NS_E; do wait_for "$ns/web-1 done" 240 run_done "$ns" web-1 || true; done
log "revision 1 runs done after $((SECONDS - T0))s"
for ns in $NS_A $NS_B $NS_D $NS_E; do show_run "$ns" web-1; show_hr "$ns"; pods_seen "$ns"; done

# the failing upgrade (chart test exits 1) in B and D
for ns in $NS_B $NS_D $NS_E; do artifact "$ns" 0.2.0; done
T1=$SECONDS
echo "--- Helm revisions (secrets owner=helm,name=web) over ${WINDOW}s after the failing upgrade: t  $NS_B $NS_D $NS_E"
while [ $((SECONDS - T1)) -le "$WINDOW" ]; do
  echo "t=$((SECONDS - T1))s  $(revisions $NS_B) $(revisions $NS_D) $(revisions $NS_E)"
  sleep 15
done
for ns in $NS_B $NS_D $NS_E; do
  echo "=== $ns"
  kubectl get secrets -n "$ns" -l owner=helm,name=web -L version,status --no-headers
  kubectl get e2eruns -n "$ns" -o wide
  for r in $(kubectl get e2eruns -n "$ns" -o name | sed 's|.*/||' | grep -v '^web-1$'); do show_run "$ns" "$r"; done
  show_hr "$ns"; pods_seen "$ns"
  kubectl get events -n "$ns" --field-selector involvedObject.kind=E2ERun -o custom-columns=TYPE:.type,REASON:.reason,OBJ:.involvedObject.name,MSG:.message --no-headers | cut -c1-240
done
# the premise of issue 28: a `helm rollback` behind Flux's back is upgraded back by Flux at once
# (the operator's own command line, core/outcomes/rollback.py: helm rollback --namespace NS --wait=false -- REL REV)
echo "--- premise: helm rollback web 1 -n $NS_B behind Flux's back; revisions of $NS_B for 90s"
echo "helm 4: $("$(ls "$BIN"/helm4-v* | tail -1)" rollback --namespace "$NS_B" --wait=false -- web 1 2>&1 | tail -1)"
echo "revisions after the helm 4 attempt: $(revisions $NS_B)"
echo "helm 3: $("$(ls "$BIN"/helm-v3* | tail -1)" rollback --namespace "$NS_B" --wait=false -- web 1 2>&1 | tail -1)"
T2=$SECONDS
while [ $((SECONDS - T2)) -le 90 ]; do echo "t=$((SECONDS - T2))s  $(revisions $NS_B)"; sleep 15; done
kubectl get secrets -n "$NS_B" -l owner=helm,name=web -L version,status --no-headers
kubectl get e2eruns -n "$NS_B" -o wide
for r in web-3 web-4 web-5; do
  kubectl get e2erun "$r" -n "$NS_B" -o jsonpath='{.metadata.name} {.spec.release.trigger} {.status.phase} {range .status.conditions[?(@.type=="RolledBack")]}RolledBack={.status}/{.reason}{end}{"\n"}' 2>/dev/null || true
done
echo "--- $NS_E (Flux remediation) at the end: its runs and what each recorded"
kubectl get e2erun -n "$NS_E" -o jsonpath='{range .items[*]}{.metadata.name} {.spec.release.trigger} {.spec.release.chartVersion} {.status.phase} [{.status.message}] tests: {range .status.tests[*]}{.name}={.phase}/{.reason} {end}{"\n"}{end}'
echo "--- mails received: $(find "$WORK/mail" -type f -path '*/new/*' | wc -l)"
grep -h '^Subject:' -r "$WORK/mail" 2>/dev/null | sort | uniq -c || true
echo "--- helm-controller: upgrades/rollbacks/tests it logged"
grep -oE '"msg":"[^"]*(release|test|upgrade|rollback|remediat)[^"]*"' "$WORK/helm-controller.log" | sort | uniq -c | sort -rn | head -20 || true
}
main "$@"; exit
