{{/* Labels on every object. */}}
{{- define "coffer.labels" -}}
app.kubernetes.io/part-of: coffer
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* The image for this mode. */}}
{{- define "coffer.image" -}}
{{- if .Values.simulation }}{{ .Values.image.plain }}{{ else }}{{ .Values.image.gramine }}{{ end }}
{{- end }}
