{{- define "demo.labels" -}}
app.kubernetes.io/name: demo-service
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
{{- define "demo.tag" -}}{{ .Values.image.tag | default .Chart.AppVersion }}{{- end }}
