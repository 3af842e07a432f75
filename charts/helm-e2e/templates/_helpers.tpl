{{- define "helm-e2e.name" -}}{{ .Chart.Name }}{{- end }}
{{- define "helm-e2e.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}{{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{ end }}
{{- end }}
{{- define "helm-e2e.selectorLabels" -}}
app.kubernetes.io/name: {{ include "helm-e2e.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
{{- define "helm-e2e.labels" -}}
{{ include "helm-e2e.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}
{{- define "helm-e2e.rules" -}}
# Helm release secrets (the watch filters server-side: label owner=helm, type helm.sh/release.v1)
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
- apiGroups: [helm-e2e.dev]
  resources: [e2eruns]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [helm-e2e.dev]
  resources: [e2eruns/status]
  verbs: [get, update, patch]
- apiGroups: [helm-e2e.dev]
  resources: [e2esuites]
  verbs: [get, list, watch]
- apiGroups: [helm-e2e.dev]
  resources: [e2esuites/status]
  verbs: [get, update, patch]
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
