{{/*
The pod's volumes and the gateway container's mounts. Secrets are mounted
read-only, only the keys named, readable by the gateway's group (fsGroup 65532).
*/}}

{{- define "mgw.volumeMounts" -}}
{{- if .Values.tmpVolume.enabled }}
- name: tmp
  mountPath: /tmp
{{- end }}
{{- if .Values.analytics.fileVolume.enabled }}
- name: analytics
  mountPath: {{ .Values.analytics.fileVolume.mountPath }}
{{- end }}
{{- if .Values.tls.enabled }}
- name: tls
  mountPath: /etc/mgw/secrets/tls
  readOnly: true
{{- if .Values.tls.clientCA.enabled }}
- name: client-ca
  mountPath: /etc/mgw/secrets/client-ca
  readOnly: true
{{- end }}
{{- end }}
{{- if .Values.auth.apiKeys.existingSecret }}
- name: api-keys
  mountPath: /etc/mgw/secrets/api-keys
  readOnly: true
{{- end }}
{{- if .Values.auth.basicAuth.existingSecret }}
- name: basic-auth
  mountPath: /etc/mgw/secrets/basic-auth
  readOnly: true
{{- end }}
{{- range .Values.auth.jwtHmac }}
- name: {{ printf "jwt-hmac-%s" .name }}
  mountPath: {{ printf "/etc/mgw/secrets/jwt-hmac/%s" .name }}
  readOnly: true
{{- end }}
{{- range .Values.auth.introspection }}
- name: {{ printf "introspection-%s" .name }}
  mountPath: {{ printf "/etc/mgw/secrets/introspection/%s" .name }}
  readOnly: true
{{- end }}
{{- if .Values.rateLimits.redis.existingSecret }}
- name: redis
  mountPath: /etc/mgw/secrets/redis
  readOnly: true
{{- end }}
{{- range .Values.extraSecretMounts }}
- name: {{ printf "secret-%s" .name }}
  mountPath: {{ .mountPath }}
  readOnly: true
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "mgw.volumes" -}}
{{- if .Values.tmpVolume.enabled }}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpVolume.sizeLimit }}
{{- end }}
{{- if .Values.analytics.fileVolume.enabled }}
- name: analytics
  emptyDir:
    {{- with .Values.analytics.fileVolume.medium }}
    medium: {{ . }}
    {{- end }}
    sizeLimit: {{ .Values.analytics.fileVolume.sizeLimit }}
{{- end }}
{{- if .Values.tls.enabled }}
- name: tls
  secret:
    secretName: {{ .Values.tls.existingSecret | quote }}
    defaultMode: 288 # 0440: read by owner and group (fsGroup 65532)
    items:
      - key: {{ .Values.tls.certKey | quote }}
        path: {{ .Values.tls.certKey | quote }}
      - key: {{ .Values.tls.keyKey | quote }}
        path: {{ .Values.tls.keyKey | quote }}
{{- if .Values.tls.clientCA.enabled }}
- name: client-ca
  secret:
    secretName: {{ .Values.tls.clientCA.existingSecret | quote }}
    defaultMode: 288 # 0440: read by owner and group (fsGroup 65532)
    items:
      - key: {{ .Values.tls.clientCA.key | quote }}
        path: {{ .Values.tls.clientCA.key | quote }}
{{- end }}
{{- end }}
{{- with .Values.auth.apiKeys }}
{{- if .existingSecret }}
- name: api-keys
  secret:
    secretName: {{ .existingSecret | quote }}
    defaultMode: 288 # 0440: read by owner and group (fsGroup 65532)
    items:
      - key: {{ .key | quote }}
        path: {{ .key | quote }}
{{- end }}
{{- end }}
{{- with .Values.auth.basicAuth }}
{{- if .existingSecret }}
- name: basic-auth
  secret:
    secretName: {{ .existingSecret | quote }}
    defaultMode: 288 # 0440: read by owner and group (fsGroup 65532)
    items:
      - key: {{ .key | quote }}
        path: {{ .key | quote }}
{{- end }}
{{- end }}
{{- range .Values.auth.jwtHmac }}
- name: {{ printf "jwt-hmac-%s" .name }}
  secret:
    secretName: {{ .existingSecret | quote }}
    defaultMode: 288 # 0440: read by owner and group (fsGroup 65532)
    items:
      - key: {{ default "secret" .key | quote }}
        path: {{ default "secret" .key | quote }}
{{- end }}
{{- range .Values.auth.introspection }}
- name: {{ printf "introspection-%s" .name }}
  secret:
    secretName: {{ .existingSecret | quote }}
    defaultMode: 288 # 0440: read by owner and group (fsGroup 65532)
    items:
      - key: {{ default "client-id" .clientIdKey | quote }}
        path: {{ default "client-id" .clientIdKey | quote }}
      - key: {{ default "client-secret" .clientSecretKey | quote }}
        path: {{ default "client-secret" .clientSecretKey | quote }}
{{- end }}
{{- with .Values.rateLimits.redis }}
{{- if .existingSecret }}
- name: redis
  secret:
    secretName: {{ .existingSecret | quote }}
    defaultMode: 288 # 0440: read by owner and group (fsGroup 65532)
    items:
      - key: {{ .key | quote }}
        path: {{ .key | quote }}
{{- end }}
{{- end }}
{{- range .Values.extraSecretMounts }}
- name: {{ printf "secret-%s" .name }}
  secret:
    secretName: {{ .secretName | quote }}
    defaultMode: {{ default 288 .defaultMode }}
    {{- if .optional }}
    optional: true
    {{- end }}
    {{- with .items }}
    items:
      {{- toYaml . | nindent 6 }}
    {{- end }}
{{- end }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}
