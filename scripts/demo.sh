#!/usr/bin/env bash
# The main job, for now: bring up the local cluster (real control plane, kwok GPU pools,
# KubeRay) in its loopback-only namespace, show the node pools and KubeRay ready, and place a
# GPU RayCluster on the A100 pool. The cluster keeps running; `make cluster-down` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
dev=.venv/bin/kubellm-dev
name=${KUBELLM_DEMO_CLUSTER:-default}
in_cluster() { "$dev" exec --name "$name" -- "$@"; }
say() { printf '\n\033[1;36m== %s\033[0m\n' "$*"; }

say "Starting the local cluster '$name' (reused if it is already running)"
"$dev" cluster up --name "$name" >/dev/null
"$dev" cluster status --name "$name" >/dev/null

say "Node pools (kwok nodes; GPU pools tainted nvidia.com/gpu=present:NoSchedule)"
in_cluster kubectl get nodes -o custom-columns='NAME:.metadata.name,POOL:.metadata.labels.kubellm\.io/node-pool,GPUS:.status.capacity.nvidia\.com/gpu,PRODUCT:.metadata.labels.nvidia\.com/gpu\.product,TAINT:.spec.taints[*].key,READY:.status.conditions[?(@.type=="Ready")].status'

say "KubeRay: CRDs established and the operator serving"
in_cluster kubectl get crd rayclusters.ray.io rayjobs.ray.io rayservices.ray.io
in_cluster kubectl api-resources --api-group=ray.io

say "A RayCluster with one 8-GPU worker on the A100 pool"
in_cluster kubectl apply -f - <<'YAML'
apiVersion: ray.io/v1
kind: RayCluster
metadata: {name: demo-a100, namespace: default}
spec:
  rayVersion: "2.60.0"
  headGroupSpec:
    rayStartParams: {}
    template:
      spec:
        containers:
          - {name: ray-head, image: "rayproject/ray:2.60.0", resources: {limits: {cpu: "1", memory: 2Gi}}}
  workerGroupSpecs:
    - groupName: gpu
      replicas: 1
      minReplicas: 1
      maxReplicas: 1
      rayStartParams: {}
      template:
        spec:
          nodeSelector: {kubellm.io/node-pool: a100-80gb}
          tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
          containers:
            - name: ray-worker
              image: "rayproject/ray:2.60.0"
              resources: {limits: {cpu: "8", memory: 64Gi, nvidia.com/gpu: "8"}}
YAML
in_cluster kubectl wait raycluster/demo-a100 --for=jsonpath='{.status.state}'=ready --timeout=120s
in_cluster kubectl get pods -l ray.io/cluster=demo-a100 -o wide

say "Done. Explore with: .venv/bin/kubellm-dev exec -- kubectl get rayclusters -A"
echo "Stop it with:       make cluster-down   (or .venv/bin/kubellm-dev cluster down --name $name)"
