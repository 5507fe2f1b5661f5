{{/* The release's full name, at most 63 characters. */}}
{{- define "kubellm.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kubellm.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: operator
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "kubellm.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "kubellm.serviceAccountName" -}}
{{- default (include "kubellm.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "kubellm.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* What the operator does in the namespaces it watches: every verb below is one it calls. */}}
{{- define "kubellm.rules" -}}
# Its own kinds: Kopf lists and watches them and patches finalizers and its bookkeeping
# annotations on them.
- apiGroups: ["kubellm.io"]
  resources: ["llmdeployments", "finetunejobs"]
  verbs: ["get", "list", "watch", "patch"]
# Their status (conditions, endpoint, progress), written by the operator.
- apiGroups: ["kubellm.io"]
  resources: ["llmdeployments/status", "finetunejobs/status"]
  verbs: ["get", "patch"]
# RayServices (LLMDeployment's child): created and updated by server-side apply, watched for
# status; deleted by garbage collection through owner references, never by the operator.
- apiGroups: ["ray.io"]
  resources: ["rayservices"]
  verbs: ["get", "list", "watch", "create", "patch"]
# RayJobs (FineTuneJob's child): applied, suspended and resumed by patch, deleted when a run
# must not be retried or its TTL is over.
- apiGroups: ["ray.io"]
  resources: ["rayjobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# RayClusters that KubeRay creates for both: read for replica and worker readiness.
- apiGroups: ["ray.io"]
  resources: ["rayclusters"]
  verbs: ["get", "list", "watch"]
# Ray pods: watched for unschedulable replicas (the scheduler's reason goes into the status).
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
# Events on the objects (phase changes, failures), posted by the operator and by Kopf.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
# The API key of an LLMDeployment (spec.apiKeySecretRef): read to ask its /v1/models whether
# an adapter is really served. Single Secrets by name only: no list, no watch.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
# PersistentVolumeClaims a spec names (pvc://): checked to exist before a child that mounts
# them is created (a missing one is a condition naming it). Single claims by name only.
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["get"]
# Each FineTuneJob's trainer identity: a ServiceAccount, and a Role and RoleBinding that let
# it patch only that job's status (the operator holds those rights itself, so it may grant
# them), deleted with the job's TTL.
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["create", "patch", "delete"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["create", "patch", "delete"]
{{- end }}
