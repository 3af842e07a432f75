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
# Helm release secrets: read only
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
# E2ERuns: created per (release, revision), pruned to historyLimit
- apiGroups: [helm-e2e.dev]
  resources: [e2eruns]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [helm-e2e.dev]
  resources: [e2eruns/status]
  verbs: [get, update, patch]
# E2ESuites: read; the operator only writes their Valid condition
- apiGroups: [helm-e2e.dev]
  resources: [e2esuites]
  verbs: [get, list, watch]
- apiGroups: [helm-e2e.dev]
  resources: [e2esuites/status]
  verbs: [get, update, patch]
# test pods and their logs
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, delete]
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}

{{/* The leader-election Lease: one per release, in the release's namespace. */}}
{{- define "helm-e2e.leaseName" -}}
{{- printf "%s-leader" (include "helm-e2e.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
