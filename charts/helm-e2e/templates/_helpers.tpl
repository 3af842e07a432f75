{{/* Chart name. */}}
{{- define "helm-e2e.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, suffixed with the chart name unless it already contains it. */}}
{{- define "helm-e2e.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Selector labels: stable across upgrades. */}}
{{- define "helm-e2e.selectorLabels" -}}
app.kubernetes.io/name: {{ include "helm-e2e.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Standard labels of every object. */}}
{{- define "helm-e2e.labels" -}}
{{ include "helm-e2e.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: helm-e2e
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The operator's ServiceAccount name. */}}
{{- define "helm-e2e.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "helm-e2e.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
What the operator does in each watched namespace (or cluster-wide), nothing more. Kubernetes RBAC cannot
select on labels, so secrets are readable in full; the operator itself only lists/watches Helm release
secrets (server-side selectors owner=helm, type=helm.sh/release.v1) and never writes them.
*/}}
{{- define "helm-e2e.rules" -}}
# Exactly what the code uses (tests/unit/chart/test_rbac.py derives it from the adapter and the kopf handlers).
# Helm release secrets: read only
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
# E2ERuns: created per (release, revision), pruned to historyLimit; status written by patch
- apiGroups: [helm-e2e.dev]
  resources: [e2eruns]
  verbs: [get, list, watch, create, delete]
- apiGroups: [helm-e2e.dev]
  resources: [e2eruns/status]
  verbs: [patch]
# test pods carry an ownerReference to their E2ERun with blockOwnerDeletion
- apiGroups: [helm-e2e.dev]
  resources: [e2eruns/finalizers]
  verbs: [update]
# E2ESuites: read; the operator only writes their Valid condition
- apiGroups: [helm-e2e.dev]
  resources: [e2esuites]
  verbs: [list, watch]
- apiGroups: [helm-e2e.dev]
  resources: [e2esuites/status]
  verbs: [patch]
# test pods and their logs (get: the readiness gate reads a release's own bare Pods)
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, delete]
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
# Events: posted about runs; listed about a failed test's pod (its diagnostics)
- apiGroups: [""]
  resources: [events]
  verbs: [create, list]
# ServiceAccounts a namespace admin marked for tests (label helm-e2e.dev/test-account=true): names only,
# watched with that label as the server-side selector (a plan reads them from the watch)
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [list, watch]
# the readiness gate: GETs of exactly the objects of releases whose runs wait for their rollout
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets]
  verbs: [get]
- apiGroups: [""]
  resources: [services, persistentvolumeclaims]
  verbs: [get]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get]
# Flux: the HelmRelease named by a release's own labels (does Flux run the chart's tests itself?), one GET
# (clients/gitops.py; docs/gitops.md). A cluster without Flux answers 404: nothing is read.
- apiGroups: [helm.toolkit.fluxcd.io]
  resources: [helmreleases]
  verbs: [get]
{{- if ne .Values.argocd.mode "off" }}
# Argo CD: Applications watched as a source of deploys (config HELM_E2E_ARGOCD=auto, when the API is served)
- apiGroups: [argoproj.io]
  resources: [applications]
  verbs: [get, list, watch]
{{- end }}
{{- if .Values.config.runChartHooks }}
# A chart's test hooks as `helm test` runs them (config.runChartHooks; without it none of this is granted):
# their supporting objects (created with the chart's names, owned by the E2ERun, checked by the trust rules
# in core/plan/hook_trust.py first) and Job tests. Kubernetes lets the operator create a Role only with rules the
# operator holds itself. `patch`: the server-side apply of a release Helm 4 applied server-side (its
# apply_method `ssa`), only where no object has the name (clients/hook_objects.py).
- apiGroups: [""]
  resources: [serviceaccounts, configmaps]
  verbs: [get, create, delete, patch]
- apiGroups: [""]
  resources: [services, persistentvolumeclaims, secrets]
  verbs: [create, delete, patch]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, create, delete, patch]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [list, create, delete]
{{- end }}
{{- end }}

{{/* The leader-election Lease: one per release, in the release's namespace. */}}
{{- define "helm-e2e.leaseName" -}}
{{- printf "%s-leader" (include "helm-e2e.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* "true" when artifacts are kept on the chart's own PersistentVolumeClaim (no s3:// store) */}}
{{- define "helm-e2e.artifactsPvc" -}}
{{- if and .Values.artifacts.enabled (not .Values.artifacts.store) }}true{{ end }}
{{- end }}
