"""LLMDeployment end to end: kubectl apply → RayService on the requested pool → Ready, and back."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubellm_dev.kwok import POOL_LABEL
from kubellm_dev.operator_proc import OperatorProcess
from kubellm_dev.paths import default_paths
from kubellm_dev.waiting import wait_for

from .conftest import E2ECluster

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
# Generous: under load (vLLM warming up beside the cluster) KubeRay and kwok slow down; the
# wait returns as soon as the object is Ready.
READY = 300.0
GROUP, VERSION, PLURAL = "kubellm.io", "v1alpha1", "llmdeployments"


def kubectl(
    cluster: E2ECluster, *args: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(default_paths().kubectl), f"--kubeconfig={cluster.kubeconfig}", *args],
        input=input,
        capture_output=True,
        text=True,
        check=False,
    )


def get_llmd(cluster: E2ECluster, namespace: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = cluster.custom.get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return result


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    return {}


def wait_ready(cluster: E2ECluster, namespace: str, name: str) -> dict[str, Any]:
    return wait_for(
        lambda: get_llmd(cluster, namespace, name),
        lambda o: condition(o, "Ready").get("status") == "True",
        timeout=READY,
        what=f"LLMDeployment {name} to become Ready",
    )


def apply_manifest(cluster: E2ECluster, namespace: str, manifest: dict[str, Any] | str) -> None:
    text = manifest if isinstance(manifest, str) else yaml.safe_dump(manifest)
    result = kubectl(cluster, "apply", "-n", namespace, "-f", "-", input=text)
    assert result.returncode == 0, result.stderr


@pytest.fixture(autouse=True)
def _operator(kubellm_operator: OperatorProcess) -> OperatorProcess:
    return kubellm_operator


@pytest.fixture(scope="module", autouse=True)
def _priority_class(cluster: E2ECluster) -> None:
    """The 70B sample names a PriorityClass; admission rejects pods whose class is missing."""
    api = client.SchedulingV1Api(cluster.api)
    try:
        api.create_priority_class(
            client.V1PriorityClass(metadata=client.V1ObjectMeta(name="llm-serving"), value=1000)
        )
    except ApiException as exc:
        if exc.status != 409:
            raise
    # Pod admission looks PriorityClasses up in an informer cache: until the new class is there,
    # pods naming it are refused (and KubeRay backs off). Wait until a dry-run pod is admitted.
    probe = client.V1Pod(
        metadata=client.V1ObjectMeta(name="priority-probe"),
        spec=client.V1PodSpec(
            priority_class_name="llm-serving",
            containers=[client.V1Container(name="c", image="nginx")],
        ),
    )

    def admitted() -> bool:
        try:
            client.CoreV1Api(cluster.api).create_namespaced_pod("default", probe, dry_run="All")
        except ApiException:
            return False
        return True

    wait_for(admitted, bool, timeout=60, what="PriorityClass llm-serving to be admitted")


def pools_of_workers(cluster: E2ECluster, namespace: str, name: str) -> list[str]:
    pods = cluster.pods(namespace, f"kubellm.io/llmdeployment={name},ray.io/node-type=worker")
    return [cluster.core.read_node(p.spec.node_name).metadata.labels[POOL_LABEL] for p in pods]


def provide_claims(cluster: E2ECluster, namespace: str, spec: dict[str, Any]) -> None:
    """Create and bind the PersistentVolumeClaims a spec's pvc:// URIs name, as a user would
    (either kind: the operator creates nothing until they exist)."""
    sources = ("model", "baseModel", "dataset", "output")
    uris = [
        *((spec.get(key) or {}).get("uri", "") for key in sources),
        *(a.get("uri", "") for a in spec.get("adapters", [])),
        *spec.get("adapterSources", []),
    ]
    for claim in sorted({u.split("/")[2] for u in uris if u.startswith("pvc://")}):
        volume = f"{namespace}-{claim}"
        cluster.core.create_persistent_volume(
            {
                "metadata": {"name": volume},
                "spec": {
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadOnlyMany"],
                    "storageClassName": "",
                    "hostPath": {"path": f"/tmp/{volume}"},  # never mounted: kwok pods
                    "claimRef": {"namespace": namespace, "name": claim},
                },
            }
        )
        cluster.core.create_namespaced_persistent_volume_claim(
            namespace,
            {
                "metadata": {"name": claim},
                "spec": {
                    "accessModes": ["ReadOnlyMany"],
                    "storageClassName": "",
                    "volumeName": volume,
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        )


def provide_api_key(cluster: E2ECluster, namespace: str, spec: dict[str, Any]) -> None:
    """The Secret a sample's apiKeySecretRef names, as its user creates it: the operator
    sends that key when it asks the serve endpoint which adapters it serves."""
    ref = spec.get("apiKeySecretRef")
    if ref is not None:
        cluster.core.create_namespaced_secret(
            namespace,
            {"metadata": {"name": ref["name"]}, "stringData": {ref["key"]: "sk-e2e"}},
        )


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_each_sample_becomes_ready_on_its_pool(
    cluster: E2ECluster, namespace: str, example: Path
) -> None:
    doc = yaml.safe_load(example.read_text())
    name, pool = doc["metadata"]["name"], doc["spec"]["placement"]["nodePool"]
    provide_claims(cluster, namespace, doc["spec"])
    provide_api_key(cluster, namespace, doc["spec"])
    apply_manifest(cluster, namespace, example.read_text())

    ready = wait_ready(cluster, namespace, name)

    status = ready["status"]
    assert status["phase"] == "Ready"
    assert status["endpoint"] == f"http://{name}-serve-svc.{namespace}.svc.cluster.local:8000/v1"
    assert status["observedGeneration"] == ready["metadata"]["generation"]
    # Children go with their owner through ownerReferences: no finalizer holds deletion up.
    assert not ready["metadata"].get("finalizers")
    rayservice = cluster.get_ray(namespace, "RayService", status["rayServiceName"])
    assert rayservice["metadata"]["ownerReferences"][0]["uid"] == ready["metadata"]["uid"]
    stages = doc["spec"]["resources"].get("pipelineParallelSize", 1)
    assert pools_of_workers(cluster, namespace, name) == [pool] * (doc["spec"]["replicas"] * stages)
    # pvc:// sources are mounted read-only where the runtime resolves them.
    worker = cluster.pods(namespace, f"kubellm.io/llmdeployment={name},ray.io/node-type=worker")[0]
    mounts = {m.mount_path: m.read_only for m in worker.spec.containers[0].volume_mounts}
    for uri in [doc["spec"]["model"]["uri"], *(a["uri"] for a in doc["spec"].get("adapters", []))]:
        if uri.startswith("pvc://"):
            assert mounts[f"/mnt/pvc/{uri.split('/')[2]}"] is True
    # KubeRay created the serve Service the endpoint names.
    assert cluster.core.read_namespaced_service(f"{name}-serve-svc", namespace).spec.selector
    # Events are posted in the background, after the status: poll for it with a deadline.
    wait_for(
        lambda: cluster.described_events(namespace, "llmd", name),
        lambda reasons: "Serving" in reasons,
        timeout=30,
        what=f"`kubectl describe llmd {name}` to show the Serving Event",
    )


def test_a_request_larger_than_any_node_says_why_it_is_not_scheduling(
    cluster: E2ECluster, namespace: str
) -> None:
    apply_manifest(
        cluster,
        namespace,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "LLMDeployment",
            "metadata": {"name": "huge"},
            "spec": {
                "model": {"uri": "hf://meta-llama/Llama-3.1-405B-Instruct"},
                "resources": {"gpusPerReplica": 16, "tensorParallelSize": 16},
                "placement": {"nodePool": "a100-80gb"},
            },
        },
    )
    stuck = wait_for(
        lambda: get_llmd(cluster, namespace, "huge"),
        lambda o: condition(o, "RayClusterReady").get("reason") == "Unschedulable",
        timeout=READY,
        what="RayClusterReady=False reason Unschedulable",
    )
    assert "Insufficient nvidia.com/gpu" in condition(stuck, "RayClusterReady")["message"]
    assert condition(stuck, "Ready")["status"] == "False"
    assert stuck["status"]["phase"] == "Pending"


def small(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LLMDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct"},
            "placement": {"nodePool": "a100-80gb"},
            **spec,
        },
    }


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Paths where two manifests differ; an absent field equals an empty one (server defaults)."""
    if not a and not b:
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            d
            for k in sorted(a.keys() | b.keys())
            for d in differences(a.get(k), b.get(k), f"{path}.{k}")
        ]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def active_cluster(cluster: E2ECluster, namespace: str, rayservice: str) -> str:
    status = cluster.get_ray(namespace, "RayService", rayservice).get("status") or {}
    return str((status.get("activeServiceStatus") or {}).get("rayClusterName"))


def serve_deployment(cluster: E2ECluster, namespace: str, rayservice: str) -> dict[str, Any]:
    spec = cluster.get_ray(namespace, "RayService", rayservice)["spec"]
    (app,) = yaml.safe_load(spec["serveConfigV2"])["applications"]
    return dict(app["deployments"][0])


def test_kubectl_scale_changes_serve_replicas_in_place(cluster: E2ECluster, namespace: str) -> None:
    apply_manifest(cluster, namespace, small("scaled"))
    wait_ready(cluster, namespace, "scaled")
    before = active_cluster(cluster, namespace, "scaled")

    result = kubectl(cluster, "scale", "-n", namespace, "llmd/scaled", "--replicas=3")
    assert result.returncode == 0, result.stderr

    scaled = wait_for(
        lambda: get_llmd(cluster, namespace, "scaled"),
        lambda o: (
            condition(o, "Ready").get("observedGeneration") == 2
            and condition(o, "Ready").get("status") == "True"
        ),
        timeout=READY,
        what="Ready at generation 2 after kubectl scale",
    )
    assert scaled["spec"]["replicas"] == 3
    assert serve_deployment(cluster, namespace, "scaled")["num_replicas"] == 3
    assert active_cluster(cluster, namespace, "scaled") == before  # no new RayCluster
    # status.replicas is what runs on the serving cluster (here no Ray autoscaler adds workers
    # behind Serve's 3 replicas), never the desired count copied from the spec.
    running = cluster.get_ray(namespace, "RayCluster", before)["status"]
    assert scaled["status"]["replicas"] == running["availableWorkerReplicas"]
    assert scaled["status"]["readyReplicas"] == running["readyWorkerReplicas"]
    scale = client.CustomObjectsApi(cluster.api).get_namespaced_custom_object_scale(
        GROUP, VERSION, namespace, PLURAL, "scaled"
    )
    assert scale["spec"]["replicas"] == 3
    assert scale["status"]["replicas"] == running["availableWorkerReplicas"]
    assert scale["status"]["selector"] == "kubellm.io/llmdeployment=scaled"


def test_a_serve_only_update_changes_serve_config_without_a_new_cluster(
    cluster: E2ECluster, namespace: str
) -> None:
    apply_manifest(cluster, namespace, small("tuned"))
    wait_ready(cluster, namespace, "tuned")
    before_cluster = active_cluster(cluster, namespace, "tuned")
    before_spec = cluster.get_ray(namespace, "RayService", "tuned")["spec"]["rayClusterConfig"]

    apply_manifest(cluster, namespace, small("tuned", engine={"maxNumSeqs": 32}))

    wait_for(
        lambda: yaml.safe_load(
            cluster.get_ray(namespace, "RayService", "tuned")["spec"]["serveConfigV2"]
        ),
        lambda cfg: cfg["applications"][0]["args"]["engine"].get("max_num_seqs") == 32,
        timeout=READY,
        what="serveConfigV2 to carry maxNumSeqs 32",
    )
    after = cluster.get_ray(namespace, "RayService", "tuned")
    assert differences(after["spec"]["rayClusterConfig"], before_spec) == []
    updated = wait_for(
        lambda: get_llmd(cluster, namespace, "tuned"),
        lambda o: (
            (o.get("status") or {}).get("observedGeneration") == o["metadata"]["generation"]
            and condition(o, "Ready").get("status") == "True"
        ),
        timeout=READY,
        what="status to catch up with generation 2",
    )
    assert updated["metadata"]["generation"] == 2
    assert active_cluster(cluster, namespace, "tuned") == before_cluster


def test_delete_leaves_nothing_behind(cluster: E2ECluster, namespace: str) -> None:
    apply_manifest(cluster, namespace, small("gone"))
    wait_ready(cluster, namespace, "gone")

    result = kubectl(
        cluster, "delete", "-n", namespace, "llmd/gone", "--wait=true", "--timeout=60s"
    )
    assert result.returncode == 0, result.stderr

    def leftovers() -> dict[str, int]:
        custom = cluster.custom
        return {
            "rayservices": len(
                custom.list_namespaced_custom_object("ray.io", "v1", namespace, "rayservices")[
                    "items"
                ]
            ),
            "rayclusters": len(
                custom.list_namespaced_custom_object("ray.io", "v1", namespace, "rayclusters")[
                    "items"
                ]
            ),
            "pods": len(cluster.pods(namespace)),
            "services": len(cluster.core.list_namespaced_service(namespace).items),
        }

    wait_for(
        leftovers,
        lambda found: not any(found.values()),
        timeout=READY,
        what="the RayService, RayCluster, pods and Services to be garbage-collected",
    )


def test_generated_children_validate_against_the_kuberay_crds(
    cluster: E2ECluster, namespace: str
) -> None:
    folder = REPO / "tests" / "unit" / "operator" / "golden"
    golden = sorted(folder.glob("*.rayservice.yaml"))
    rayjobs = sorted(folder.glob("*.rayjob.yaml"))  # with the trainer's identity before them
    assert golden
    assert rayjobs
    documents = [(p, yaml.safe_load(p.read_text())) for p in golden] + [
        (p, doc) for p in rayjobs for doc in yaml.safe_load_all(p.read_text())
    ]
    for path, manifest in documents:
        manifest["metadata"]["namespace"] = namespace
        manifest["metadata"].pop("ownerReferences")
        result = kubectl(
            cluster,
            "create",
            "--dry-run=server",
            "--validate=strict",
            "-f",
            "-",
            input=yaml.safe_dump(manifest),
        )
        assert result.returncode == 0, f"{path.name}: {result.stderr}"


def test_operator_logs_are_json_with_the_object(kubellm_operator: OperatorProcess) -> None:
    assert kubellm_operator.managed is not None
    lines = kubellm_operator.managed.log.read_text().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert records, "no JSON log lines"
    about_objects = [r for r in records if isinstance(r.get("object"), dict)]
    assert about_objects, "no log line names its object"
    assert {"namespace", "name"} <= about_objects[-1]["object"].keys()


def test_operator_metrics_count_reconciles(kubellm_operator: OperatorProcess) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    text = opener.open(kubellm_operator.metrics_url, timeout=5).read().decode()
    assert "kubellm_reconcile_total" in text
    assert "kubellm_reconcile_duration_seconds_bucket" in text
    assert 'kubellm_objects{kind="LLMDeployment"' in text
