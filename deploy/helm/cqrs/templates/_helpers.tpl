{{/* Chart name, truncated for DNS labels. */}}
{{- define "cqrs.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name. */}}
{{- define "cqrs.fullname" -}}
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

{{- define "cqrs.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "cqrs.labels" -}}
helm.sh/chart: {{ include "cqrs.chart" . }}
{{ include "cqrs.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ include "cqrs.name" . }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "cqrs.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cqrs.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The services. Each entry: name (component), key (values key), kafka / mongo / saga (which
secret variables it gets; saga: SAGA_SIGNING_KEY, shared by saga-svc and command-svc). Use: {{ range $c := include "cqrs.components" . | fromYamlArray }}
*/}}
{{- define "cqrs.components" -}}
- {name: command-svc, key: commandSvc, kafka: true, mongo: false, api: true, saga: true}
- {name: projector-svc, key: projectorSvc, kafka: true, mongo: true, api: false}
- {name: query-svc, key: querySvc, kafka: false, mongo: true, api: true}
- {name: admin-svc, key: adminSvc, kafka: true, mongo: false, api: true}
- {name: saga-svc, key: sagaSvc, kafka: true, mongo: false, api: false, saga: true}
{{- end }}

{{/* Per-component helpers take (dict "root" $ "c" $component). */}}
{{- define "cqrs.componentFullname" -}}
{{- printf "%s-%s" (include "cqrs.fullname" .root | trunc 49 | trimSuffix "-") .c.name }}
{{- end }}

{{- define "cqrs.componentLabels" -}}
{{ include "cqrs.labels" .root }}
app.kubernetes.io/component: {{ .c.name }}
{{- end }}

{{- define "cqrs.componentSelectorLabels" -}}
{{ include "cqrs.selectorLabels" .root }}
app.kubernetes.io/component: {{ .c.name }}
{{- end }}

{{/* A Service exists for the component: service.enabled, or (projector) for the ServiceMonitor. */}}
{{- define "cqrs.componentHasService" -}}
{{- $v := index .root.Values .c.key }}
{{- if and $v.enabled (or $v.service.enabled .root.Values.serviceMonitor.enabled) }}true{{ end }}
{{- end }}

{{- define "cqrs.image" -}}
{{- $v := index .root.Values .c.key }}
{{- $repo := $v.image.repository }}
{{- with .root.Values.image.registry }}{{ $repo = printf "%s/%s" (trimSuffix "/" .) $repo }}{{ end }}
{{- $tag := $v.image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion }}
{{- printf "%s:%s" $repo (toString $tag) }}
{{- end }}

{{- define "cqrs.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cqrs.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* True when MONGO_URI comes from the Secret. */}}
{{- define "cqrs.mongoUriFromSecret" -}}
{{- if and .Values.secret.existingSecret .Values.secret.keys.mongoUri }}true{{ end }}
{{- end }}

{{/* Secure by default: no render without an authentication setting (values.yaml, "auth"). */}}
{{- define "cqrs.validateAuth" -}}
{{- if .Values.auth.enabled }}
{{- $hs := and .Values.secret.existingSecret .Values.secret.keys.authHs256Secret }}
{{- if not (or .Values.auth.jwksUrl $hs) }}
{{- fail "auth: set auth.jwksUrl (your OIDC provider's JWKS), or an HS256 secret (secret.existingSecret + secret.keys.authHs256Secret), or auth.enabled=false to run without authentication" }}
{{- end }}
{{- if not (and .Values.auth.issuer .Values.auth.audience) }}
{{- fail "auth: set auth.issuer and auth.audience (the JWT iss and aud every token must carry)" }}
{{- end }}
{{- end }}
{{- end }}
