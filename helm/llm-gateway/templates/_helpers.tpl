{{- define "llm-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "llm-gateway.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "llm-gateway.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "llm-gateway.labels" -}}
app.kubernetes.io/name: {{ include "llm-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "llm-gateway.selector" -}}
app.kubernetes.io/name: {{ include "llm-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "llm-gateway.gatewayImage" -}}
{{ .Values.gateway.image.repository }}:{{ .Values.gateway.image.tag }}
{{- end -}}

{{- define "llm-gateway.secretName" -}}
{{- default (printf "%s-gateway" (include "llm-gateway.fullname" .)) .Values.gateway.existingSecret -}}
{{- end -}}

{{- define "llm-gateway.modelClaim" -}}
{{- default (printf "%s-models" (include "llm-gateway.fullname" .)) .Values.modelRepository.existingClaim -}}
{{- end -}}

{{/* The Triton service of one precision: <fullname>-triton-<precision>. */}}
{{- define "llm-gateway.tritonName" -}}
{{- printf "%s-triton-%s" (include "llm-gateway.fullname" .root) .precision -}}
{{- end -}}

{{/* A secret value: `.value` when given, else the existing Secret's (a generated value is
     kept across upgrades and reinstalls), else a new random one. */}}
{{- define "llm-gateway.secretValue" -}}
{{- $existing := lookup "v1" "Secret" .namespace .secret -}}
{{- if .value -}}
{{- .value -}}
{{- else if and $existing (index $existing.data .key) -}}
{{- index $existing.data .key | b64dec -}}
{{- else -}}
{{- randAlphaNum 48 -}}
{{- end -}}
{{- end -}}

{{/* REDIS_URL of the gateway container: the bundled Redis (no password), else redis.url
     (from the chart's Secret, or as is beside an existing Secret), else the existing
     Secret's optional REDIS_URL key. Nothing: limits are kept per replica. */}}
{{- define "llm-gateway.redisEnv" -}}
{{- if .Values.redis.bundled }}
- name: REDIS_URL
  value: {{ printf "redis://%s-redis:6379/0" (include "llm-gateway.fullname" .) | quote }}
{{- else if and .Values.redis.url (not .Values.gateway.existingSecret) }}
- name: REDIS_URL
  valueFrom: {secretKeyRef: {name: {{ include "llm-gateway.secretName" . }}, key: REDIS_URL}}
{{- else if .Values.redis.url }}
- name: REDIS_URL
  value: {{ .Values.redis.url | quote }}
{{- else if .Values.gateway.existingSecret }}
- name: REDIS_URL
  valueFrom: {secretKeyRef: {name: {{ .Values.gateway.existingSecret }}, key: REDIS_URL, optional: true}}
{{- end }}
{{- end -}}

{{/* The engine build's marker folder of one precision; a file in it names the Triton image
     tag the engines were built for. (dict "root" $ "precision" "int8") */}}
{{- define "llm-gateway.engineReadyDir" -}}
{{- printf "%s/.engines-ready/%s" .root.Values.modelRepository.mountPath .precision -}}
{{- end -}}

{{- define "llm-gateway.engineMarker" -}}
{{- printf "%s/%s" (include "llm-gateway.engineReadyDir" .) .root.Values.triton.image.tag -}}
{{- end -}}

{{/* Resources with `count` GPUs requested and limited. (dict "resources" … "count" 1) */}}
{{- define "llm-gateway.gpuResources" -}}
{{- $resources := deepCopy .resources -}}
{{- $gpu := dict "nvidia.com/gpu" .count -}}
{{- $_ := set $resources "requests" (merge (deepCopy $gpu) (default (dict) $resources.requests)) -}}
{{- $_ = set $resources "limits" (merge (deepCopy $gpu) (default (dict) $resources.limits)) -}}
{{- toYaml $resources -}}
{{- end -}}

{{/* Settings every gateway container gets (the server, the migration job). */}}
{{- define "llm-gateway.gatewayEnv" -}}
- name: GATEWAY_ENV
  value: {{ .Values.gateway.env | quote }}
{{- if .Values.postgresql.bundled }}
- name: POSTGRES_PASSWORD
  valueFrom: {secretKeyRef: {name: {{ include "llm-gateway.fullname" . }}-postgresql, key: POSTGRES_PASSWORD}}
- name: DATABASE_URL
  value: "postgresql+asyncpg://{{ .Values.postgresql.user }}:$(POSTGRES_PASSWORD)@{{ include "llm-gateway.fullname" . }}-postgresql:5432/{{ .Values.postgresql.database }}"
{{- else }}
- name: DATABASE_URL
  valueFrom: {secretKeyRef: {name: {{ include "llm-gateway.secretName" . }}, key: DATABASE_URL}}
{{- end }}
- name: GATEWAY_ADMIN_TOKEN
  valueFrom: {secretKeyRef: {name: {{ include "llm-gateway.secretName" . }}, key: GATEWAY_ADMIN_TOKEN}}
{{- end -}}

{{- define "llm-gateway.enabledPrecisions" -}}
{{- range $precision, $model := .Values.models }}{{ if $model.enabled }}{{ $precision }} {{ end }}{{ end -}}
{{- end -}}

{{/* What the engine build Job builds, each with its marker: the enabled precisions, and
     `embeddings` when the embedding model is enabled. */}}
{{- define "llm-gateway.builtModels" -}}
{{- include "llm-gateway.enabledPrecisions" . }}{{ if .Values.embeddings.enabled }}embeddings {{ end -}}
{{- end -}}

{{/* GATEWAY_ALLOWED_HOSTS: the Host names the admin API and the playground answer: the
     gateway Service's names, loopback, the Ingress's and HTTPRoute's hosts, and
     gateway.allowedHosts. */}}
{{- define "llm-gateway.allowedHosts" -}}
{{- $service := printf "%s-gateway" (include "llm-gateway.fullname" .) -}}
{{- $namespace := .Release.Namespace | default "default" -}}
{{- $hosts := list $service (printf "%s.%s" $service $namespace) (printf "%s.%s.svc" $service $namespace) (printf "%s.%s.svc.cluster.local" $service $namespace) "localhost" "127.0.0.1" "[::1]" -}}
{{- if .Values.ingress.enabled }}{{ $hosts = concat $hosts .Values.ingress.hosts }}{{ end -}}
{{- if .Values.httpRoute.enabled }}{{ $hosts = concat $hosts .Values.httpRoute.hostnames }}{{ end -}}
{{- concat $hosts .Values.gateway.allowedHosts | uniq | join "," -}}
{{- end -}}

{{/* The metrics port is on the gateway Service when that stays inside the cluster
     (ClusterIP); a NodePort or LoadBalancer Service would publish it, so it gets its own. */}}
{{- define "llm-gateway.metricsOnOwnService" -}}
{{- if ne .Values.gateway.service.type "ClusterIP" }}true{{ end -}}
{{- end -}}

{{/* The NetworkPolicy peer of the metrics scraper (networkPolicy.metricsScraper). */}}
{{- define "llm-gateway.metricsScraperPeer" -}}
{{- $scraper := .Values.networkPolicy.metricsScraper -}}
- podSelector: {{- toYaml (default (dict) $scraper.podSelector) | nindent 4 }}
  {{- if $scraper.namespaceSelector }}
  namespaceSelector: {{- toYaml $scraper.namespaceSelector | nindent 4 }}
  {{- else if $scraper.namespace }}
  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: {{ $scraper.namespace }}}}
  {{- end }}
{{- end -}}
