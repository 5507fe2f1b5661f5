#!/usr/bin/env bash
# The main job, for now: bring up the local cluster (real control plane, kwok GPU pools,
# KubeRay, the kubellm operator) in its loopback-only namespace, show the node pools and
# KubeRay ready, and deploy a sample LLMDeployment that reaches Ready on the A100 pool.
# The cluster keeps running; `make cluster-down` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
dev=.venv/bin/kubellm-dev
name=${KUBELLM_DEMO_CLUSTER:-demo}
in_cluster() { "$dev" exec --name "$name" -- "$@"; }
say() { printf '\n\033[1;36m== %s\033[0m\n' "$*"; }

say "Starting the local cluster '$name' with the kubellm operator (a fresh one each run)"
"$dev" cluster down --name "$name" >/dev/null 2>&1 || true
"$dev" cluster up --name "$name" --operator >/dev/null
"$dev" cluster status --name "$name" >/dev/null

say "Node pools (kwok nodes; GPU pools tainted nvidia.com/gpu=present:NoSchedule)"
in_cluster kubectl get nodes -o custom-columns='NAME:.metadata.name,POOL:.metadata.labels.kubellm\.io/node-pool,GPUS:.status.capacity.nvidia\.com/gpu,PRODUCT:.metadata.labels.nvidia\.com/gpu\.product,TAINT:.spec.taints[*].key,READY:.status.conditions[?(@.type=="Ready")].status'

say "KubeRay: CRDs established and the operator serving"
in_cluster kubectl get crd rayclusters.ray.io rayjobs.ray.io rayservices.ray.io
in_cluster kubectl api-resources --api-group=ray.io

say "An LLMDeployment: Llama 3.1 8B on one A100 (examples/llama-8b-a100.yaml)"
in_cluster kubectl apply -f examples/llama-8b-a100.yaml
in_cluster kubectl wait llmd/llama-8b --for=condition=Ready --timeout=180s
in_cluster kubectl get llmd llama-8b
say "What the operator created: a RayService, and KubeRay's Ray pods on the requested pool"
in_cluster kubectl get rayservice,raycluster
in_cluster kubectl get pods -l kubellm.io/llmdeployment=llama-8b \
  -o custom-columns='POD:.metadata.name,NODE:.spec.nodeName,GPUS:.spec.containers[0].resources.limits.nvidia\.com/gpu,STATUS:.status.phase'
in_cluster kubectl get llmd llama-8b -o jsonpath='{range .status.conditions[*]}{.type}={.status} ({.reason}): {.message}{"\n"}{end}'
echo "(The Ray dashboard answers through the scripted bridge until the runtime issue lands.)"

say "Done. Explore with: .venv/bin/kubellm-dev exec --name $name -- kubectl get llmd -A"
echo "Stop it with:       .venv/bin/kubellm-dev cluster down --name $name"
