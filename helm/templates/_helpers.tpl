{{/*
Names, labels and the checks that turn wrong combinations of values into a
clear `helm install` error instead of a pod that never starts.
*/}}

{{- define "mgw.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mgw.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The admin Service's name: the full name plus `-admin`, within 63 characters. */}}
{{- define "mgw.adminName" -}}
{{- printf "%s-admin" (include "mgw.fullname" . | trunc 57 | trimSuffix "-") }}
{{- end }}

{{- define "mgw.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The API version the image serves: its tag when known, else the chart's appVersion. */}}
{{- define "mgw.version" -}}
{{- default .Chart.AppVersion .Values.image.tag | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mgw.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mgw.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "mgw.labels" -}}
helm.sh/chart: {{ include "mgw.chart" . }}
{{ include "mgw.selectorLabels" . }}
app.kubernetes.io/version: {{ include "mgw.version" . | quote }}
app.kubernetes.io/component: gateway
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "mgw.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mgw.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: `repository@digest` when a digest is set (what `mgw push`
printed), else `repository:tag`. Neither is a rendering error.
*/}}
{{- define "mgw.image" -}}
{{- $img := .Values.image }}
{{- if not $img.repository }}
{{- fail "image.repository is required: use the values file `mgw build`/`mgw push` wrote, or set --set image.repository=REGISTRY/NAME" }}
{{- end }}
{{- if $img.digest }}
{{- printf "%s@%s" $img.repository $img.digest }}
{{- else if $img.tag }}
{{- printf "%s:%s" $img.repository $img.tag }}
{{- else }}
{{- fail "image.digest or image.tag is required: set image.digest=sha256:… (preferred, printed by `mgw push`) or image.tag" }}
{{- end }}
{{- end }}

{{/* Seconds the pod may take to stop: preStop sleep + drain + margin. */}}
{{- define "mgw.terminationGracePeriodSeconds" -}}
{{- $l := .Values.lifecycle }}
{{- $need := add (int $l.preStopSleepSeconds) (int $l.drainSeconds) }}
{{- if kindIs "invalid" $l.terminationGracePeriodSeconds }}
{{- add $need 10 }}
{{- else if lt (int $l.terminationGracePeriodSeconds) (int $need) }}
{{- fail (printf "lifecycle.terminationGracePeriodSeconds (%d) must cover lifecycle.preStopSleepSeconds + lifecycle.drainSeconds (%d), or in-flight requests are cut off" (int $l.terminationGracePeriodSeconds) $need) }}
{{- else }}
{{- int $l.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/* `MY-provider` → `MY_PROVIDER`, for environment variable names. */}}
{{- define "mgw.envName" -}}
{{- . | upper | replace "-" "_" }}
{{- end }}
