{{/*
The gateway container's environment: listeners, workers and logging, the
variables naming mounted secret files, then the bundle's own `${VAR}`s (`env`,
`extraEnv`). Rendered once here so `requiredEnv` can be checked against it.
*/}}
{{- define "mgw.env" -}}
{{- $host := .Values.gateway.listenAddress }}
{{- if and (contains ":" $host) (not (hasPrefix "[" $host)) }}
{{- $host = printf "[%s]" $host }}
{{- end }}
- name: MGW_LISTEN
  value: {{ printf "%s:%d" $host (int .Values.gateway.ports.api) | quote }}
- name: MGW_ADMIN_LISTEN
  value: {{ printf "%s:%d" $host (int .Values.gateway.ports.admin) | quote }}
- name: MGW_WORKERS
  {{- if .Values.gateway.workers }}
  value: {{ .Values.gateway.workers | quote }}
  {{- else }}
  # The CPU limit rounded up to whole cores.
  valueFrom:
    resourceFieldRef:
      containerName: gateway
      resource: limits.cpu
      divisor: "1"
  {{- end }}
# The most replicas that can run at once (the HPA's maximum, else replicaCount):
# `rateLimits.redis.replicas: ${MGW_REPLICAS}` divides a global quota by it while
# Redis is down, so the replicas together never exceed it.
- name: MGW_REPLICAS
  value: {{ ternary .Values.autoscaling.maxReplicas .Values.replicaCount .Values.autoscaling.enabled | int | toString | quote }}
- name: MGW_LOG
  value: {{ .Values.gateway.logLevel | quote }}
- name: MGW_LOG_FORMAT
  value: {{ .Values.gateway.logFormat | quote }}
{{- if .Values.tls.enabled }}
- name: MGW_TLS_CERT_FILE
  value: {{ printf "/etc/mgw/secrets/tls/%s" .Values.tls.certKey | quote }}
- name: MGW_TLS_KEY_FILE
  value: {{ printf "/etc/mgw/secrets/tls/%s" .Values.tls.keyKey | quote }}
{{- if .Values.tls.clientCA.enabled }}
- name: MGW_TLS_CLIENT_CA_FILE
  value: {{ printf "/etc/mgw/secrets/client-ca/%s" .Values.tls.clientCA.key | quote }}
{{- end }}
{{- end }}
{{- with .Values.auth.apiKeys }}
{{- if .existingSecret }}
- name: MGW_API_KEYS_FILE
  value: {{ printf "/etc/mgw/secrets/api-keys/%s" .key | quote }}
{{- end }}
{{- end }}
{{- with .Values.auth.basicAuth }}
{{- if .existingSecret }}
- name: MGW_BASIC_AUTH_USERS_FILE
  value: {{ printf "/etc/mgw/secrets/basic-auth/%s" .key | quote }}
{{- end }}
{{- end }}
{{- range .Values.auth.jwtHmac }}
- name: {{ printf "MGW_JWT_HMAC_%s_FILE" (include "mgw.envName" .name) }}
  value: {{ printf "/etc/mgw/secrets/jwt-hmac/%s/%s" .name (default "secret" .key) | quote }}
{{- end }}
{{- range .Values.auth.introspection }}
- name: {{ printf "MGW_INTROSPECTION_%s_CLIENT_ID_FILE" (include "mgw.envName" .name) }}
  value: {{ printf "/etc/mgw/secrets/introspection/%s/%s" .name (default "client-id" .clientIdKey) | quote }}
- name: {{ printf "MGW_INTROSPECTION_%s_CLIENT_SECRET_FILE" (include "mgw.envName" .name) }}
  value: {{ printf "/etc/mgw/secrets/introspection/%s/%s" .name (default "client-secret" .clientSecretKey) | quote }}
{{- end }}
{{- with .Values.tracing.otlp.endpoint }}
- name: MGW_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with .Values.rateLimits.redis }}
{{- if .url }}
- name: MGW_REDIS_URL
  value: {{ .url | quote }}
{{- end }}
{{- if .username }}
- name: MGW_REDIS_USERNAME
  value: {{ .username | quote }}
{{- end }}
{{- if .existingSecret }}
- name: MGW_REDIS_PASSWORD_FILE
  value: {{ printf "/etc/mgw/secrets/redis/%s" .key | quote }}
{{- end }}
{{- end }}
{{- range .Values.extraSecretMounts }}
{{- if .env }}
- name: {{ .env }}
  value: {{ .mountPath | quote }}
{{- end }}
{{- end }}
{{- if .Values.analytics.fileVolume.enabled }}
- name: MGW_ANALYTICS_DIR
  value: {{ .Values.analytics.fileVolume.mountPath | quote }}
{{- end }}
{{- range $name, $value := .Values.env }}
- name: {{ $name }}
  value: {{ toString $value | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Fails when a variable the bundle needs without a default (`requiredEnv`, written
by `mgw build`) is set by nothing: the gateway would exit 64 at start. `envFrom`
sources cannot be looked into, so with them the check is skipped.
*/}}
{{- define "mgw.checkRequiredEnv" -}}
{{- if not .Values.envFrom }}
{{- $set := dict }}
{{- range (include "mgw.env" . | fromYamlArray) }}
{{- if or (hasKey . "valueFrom") (ne (toString (get . "value")) "") }}
{{- $_ := set $set .name true }}
{{- end }}
{{- end }}
{{- $missing := list }}
{{- range .Values.requiredEnv }}
{{- if not (hasKey $set .) }}
{{- $missing = append $missing . }}
{{- end }}
{{- end }}
{{- if $missing }}
{{- fail (printf "the bundle needs environment variables that nothing sets: %s; set them under `env` (or `extraEnv`/`envFrom`), and configure the secret that sets any `MGW_*_FILE` one" (join ", " $missing)) }}
{{- end }}
{{- end }}
{{- end }}
