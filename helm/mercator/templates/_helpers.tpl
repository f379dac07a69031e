{{/* The chart's name. */}}
{{- define "mercator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name, the base of every object's name. */}}
{{- define "mercator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "mercator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "mercator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels that select the pods. */}}
{{- define "mercator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mercator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mercator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mercator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
Which stores are embedded (on the pod's own volume), as a comma-separated list; empty
when every store is shared. A store given from a Secret counts as shared.
*/}}
{{- define "mercator.embeddedStores" -}}
{{- $s := .Values.storage -}}
{{- $embedded := list -}}
{{- if not (or $s.registry.existingSecret (hasPrefix "postgres" $s.registry.url)) -}}
{{- $embedded = append $embedded "registry (SQLite)" -}}
{{- end -}}
{{- if not (regexMatch "^(s3|s3a|gs|az|azure|abfss?)://" $s.artifacts.url) -}}
{{- $embedded = append $embedded "artifacts (a local folder)" -}}
{{- end -}}
{{- if not (or $s.onlineStore.existingSecret (hasPrefix "redis" $s.onlineStore.url)) -}}
{{- $embedded = append $embedded "online store (embedded)" -}}
{{- end -}}
{{- if not (regexMatch "^(s3|s3a|gs|az|azure|abfss?)://" $s.offlineStore.url) -}}
{{- $embedded = append $embedded "offline store (a local folder)" -}}
{{- end -}}
{{- join ", " $embedded -}}
{{- end -}}

{{/* Refuses several replicas (or an autoscaler) on embedded storage. */}}
{{- define "mercator.checkReplicas" -}}
{{- $embedded := include "mercator.embeddedStores" . -}}
{{- $many := or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled -}}
{{- if and $many $embedded -}}
{{- fail (printf "replicaCount > 1 (or autoscaling) needs shared storage, but these stores are embedded, one per pod: %s. Set storage.registry (PostgreSQL), storage.artifacts.url and storage.offlineStore.url (s3://…) and storage.onlineStore (Redis), or run one replica." $embedded) -}}
{{- end -}}
{{- end -}}

{{/* Whether TLS is on. */}}
{{- define "mercator.tls" -}}
{{- if .Values.tls.existingSecret -}}true{{- end -}}
{{- end -}}

{{/* Labels that select the stream consumers' pods (apart from the serving pods). */}}
{{- define "mercator.streamsSelectorLabels" -}}
app.kubernetes.io/name: {{ include "mercator.name" . }}-streams
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
