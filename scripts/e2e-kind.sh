#!/usr/bin/env bash
# The e2e tier against a kind cluster, for machines with Docker (not this project's CI
# machines, which have no Docker engine). Creates a kind cluster whose workers play the node
# pools of dev/kubellm_dev/data/pools.yaml (labels, GPU taint, nvidia.com/gpu capacity patched
# in as an extended resource), installs the KubeRay operator from the same pinned module the
# local cluster builds, and runs tests/e2e with KUBELLM_E2E_KUBECONFIG. Tests that need the
# local harness (scripted/real Ray bridge, namespace isolation) skip and say why.
#
#   scripts/e2e-kind.sh            create (or reuse) the cluster, run the tests
#   KEEP=1 scripts/e2e-kind.sh     keep the cluster afterwards
#   scripts/e2e-kind.sh --delete   delete the cluster
set -euo pipefail
cd "$(dirname "$0")/.."

cluster=${KIND_CLUSTER:-kubellm-e2e}
kubeconfig=${KIND_KUBECONFIG:-$HOME/.cache/kubellm/kind-$cluster.kubeconfig}
py=.venv/bin/python

die() { echo "e2e-kind: $*" >&2; exit 1; }
for tool in docker kind go; do command -v "$tool" >/dev/null || die "'$tool' is required"; done
docker info >/dev/null 2>&1 || die "no Docker engine is reachable (docker info failed)"

if [[ "${1:-}" == "--delete" ]]; then
    kind delete cluster --name "$cluster"
    exit 0
fi

[[ -x $py ]] || scripts/install.sh --python
kubectl=.venv/bin/kubectl

if ! kind get clusters | grep -qx "$cluster"; then
    kind create cluster --name "$cluster" --kubeconfig "$kubeconfig" --wait 120s --config - <<'YAML'
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
  - {role: worker, labels: {kubellm.io/node-pool: a100-80gb, nvidia.com/gpu.product: NVIDIA-A100-SXM4-80GB}}
  - {role: worker, labels: {kubellm.io/node-pool: a100-80gb, nvidia.com/gpu.product: NVIDIA-A100-SXM4-80GB}}
  - {role: worker, labels: {kubellm.io/node-pool: l4, nvidia.com/gpu.product: NVIDIA-L4}}
  - {role: worker, labels: {kubellm.io/node-pool: cpu}}
YAML
else
    kind get kubeconfig --name "$cluster" > "$kubeconfig"
fi
k() { "$kubectl" --kubeconfig "$kubeconfig" "$@"; }

# GPU pools: taint like GPU operator nodes and advertise nvidia.com/gpu as an extended resource
# (there is no device plugin on kind; the scheduler only needs the capacity).
for node in $(k get nodes -l kubellm.io/node-pool -o name); do
    pool=$(k get "$node" -o jsonpath='{.metadata.labels.kubellm\.io/node-pool}')
    case "$pool" in
        a100-80gb) gpus=8 ;;
        l4) gpus=4 ;;
        *) continue ;;
    esac
    k taint --overwrite "$node" nvidia.com/gpu=present:NoSchedule
    k patch "$node" --subresource=status --type=json \
        -p "[{\"op\":\"add\",\"path\":\"/status/capacity/nvidia.com~1gpu\",\"value\":\"$gpus\"}]"
done

# KubeRay: the same pinned ray-operator module the local cluster builds ships its kustomize
# config (CRDs, RBAC, Deployment of the operator image of that version).
GOMODCACHE=$("$py" -c 'from kubellm_dev.paths import default_paths; print(default_paths().gomodcache)')
export GOMODCACHE GOFLAGS=-mod=mod GOTOOLCHAIN=local
version=$("$py" -c 'from kubellm_dev import versions; print(versions.KUBERAY)')
(cd dev/kuberay && go mod download github.com/ray-project/kuberay/ray-operator)
config="$GOMODCACHE/github.com/ray-project/kuberay/ray-operator@$version/config/default"
k apply --server-side --force-conflicts -k "$config"
k -n default rollout status deployment/kuberay-operator --timeout=300s

status=0
KUBELLM_E2E_KUBECONFIG="$kubeconfig" .venv/bin/pytest tests/e2e "$@" || status=$?
[[ "${KEEP:-0}" == 1 ]] || kind delete cluster --name "$cluster"
exit $status
