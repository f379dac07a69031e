{{/*
The server's mercator.toml, indented for a ConfigMap's data: the chart's settings, then
`config` from the values. The serving pods' ConfigMap has it; the stream consumers' adds
[streams] (`mercator.streamsToml`).
*/}}
{{- define "mercator.configToml" -}}
{{- $tls := include "mercator.tls" . -}}
{{- $s := .Values.storage -}}
{{- $chart := dict
  "server" (dict "data_dir" "/var/lib/mercator" "shutdown_grace_secs" .Values.shutdown.drainSeconds)
  "grpc" (dict "addr" (printf "0.0.0.0:%d" (int .Values.service.grpcPort)))
  "metrics" (dict "addr" (printf "0.0.0.0:%d" (int .Values.service.metricsPort)) "protect" .Values.monitoring.protect)
  "auth" (dict "mode" .Values.auth.mode)
-}}
{{- if $s.artifacts.url -}}
{{- $_ := set $chart "artifacts" (dict "url" $s.artifacts.url) -}}
{{- end -}}
{{- $features := dict -}}
{{- if not $s.onlineStore.existingSecret -}}
{{- $_ := set $features "online_store" $s.onlineStore.url -}}
{{- end -}}
{{- if $s.offlineStore.url -}}
{{- $_ := set $features "offline_store" $s.offlineStore.url -}}
{{- end -}}
{{- $_ := set $chart "features" $features -}}
{{- if and $s.registry.url (not $s.registry.existingSecret) -}}
{{- $_ := set $chart "registry" (dict "url" $s.registry.url) -}}
{{- end -}}
{{- with .Values.auth.jwks -}}
{{- if .existingSecret -}}
{{- $_ := set $chart.auth "jwks_file" (printf "/etc/mercator/jwks/%s" .key) -}}
{{- $_ := set $chart.auth "jwt_issuer" .issuer -}}
{{- $_ := set $chart.auth "jwt_audience" .audience -}}
{{- $_ := set $chart.auth "jwt_scopes_claim" .scopesClaim -}}
{{- end -}}
{{- end -}}
{{- if $tls -}}
{{- $t := dict "cert_file" "/etc/mercator/tls/tls.crt" "key_file" "/etc/mercator/tls/tls.key" -}}
{{- if .Values.tls.clientCA.existingSecret -}}
{{- $_ := set $t "client_ca_file" (printf "/etc/mercator/client-ca/%s" .Values.tls.clientCA.key) -}}
{{- $_ := set $t "client_cert" .Values.tls.clientCert -}}
{{- end -}}
{{- $principals := list -}}
{{- range $name, $scopes := .Values.tls.clientPrincipals -}}
{{- $principals = append $principals (printf "%s=%s" $name $scopes) -}}
{{- end -}}
{{- if $principals -}}
{{- $_ := set $t "client_principals" $principals -}}
{{- end -}}
{{- $_ := set $chart "tls" $t -}}
{{- end }}
    # Rendered by the Helm chart: its settings, then `config` from the values. Values go
    # through toJson, which writes valid TOML scalars and arrays and, unlike toToml,
    # whole numbers without a fraction (the server's integer keys refuse 256.0).
    {{- range $section, $keys := mustMergeOverwrite $chart (deepCopy .Values.config) }}

    [{{ $section }}]
    {{- range $key, $value := $keys }}
    {{ $key }} = {{ toJson $value }}
    {{- end }}
    {{- end }}
{{- end -}}

{{/* [streams] for the consumers' StatefulSet, indented like `mercator.configToml`. */}}
{{- define "mercator.streamsToml" -}}
{{- $k := .Values.streams }}

    [streams]
    brokers = {{ toJson $k.brokers }}
    replicas = {{ int $k.replicas }}
    {{- range $key, $value := $k.settings }}
    {{ $key }} = {{ toJson $value }}
    {{- end }}
    {{- if $k.tls.enabled }}

    [streams.tls]
    enabled = true
    {{- with $k.tls.existingSecret }}
    ca_file = {{ printf "/etc/mercator/kafka-tls/%s" $k.tls.caKey | toJson }}
    {{- if $k.tls.certKey }}
    cert_file = {{ printf "/etc/mercator/kafka-tls/%s" $k.tls.certKey | toJson }}
    key_file = {{ printf "/etc/mercator/kafka-tls/%s" $k.tls.keyKey | toJson }}
    {{- end }}
    {{- end }}
    {{- end }}
    {{- if $k.sasl.mechanism }}

    [streams.sasl]
    mechanism = {{ toJson $k.sasl.mechanism }}
    username = {{ toJson $k.sasl.username }}
    password_file = {{ printf "/etc/mercator/kafka-sasl/%s" $k.sasl.passwordKey | toJson }}
    {{- end }}
    {{- range $k.sources }}

    [[streams.sources]]
    {{- range $key, $value := . }}
    {{- if kindIs "map" $value }}
    {{ $key }} = { {{- range $i, $f := keys $value | sortAlpha }}{{ if $i }},{{ end }} {{ toJson $f }} = {{ toJson (get $value $f) }}{{- end }} }
    {{- else }}
    {{ $key }} = {{ toJson $value }}
    {{- end }}
    {{- end }}
    {{- end }}
    {{- range $k.triggers }}

    [[streams.triggers]]
    {{- range $key, $value := . }}
    {{ $key }} = {{ toJson $value }}
    {{- end }}
    {{- end }}
{{- end -}}
