"""FineTuneJob for real: FineTuneJob → operator → RayJob → KubeRay (HTTPMode) → bridge (real
mode) → the trainer on a real local Ray head, writing progress to the job's status with the
identity its pod would have.

The trainer runs where the head pod would; the bridge plays the kubelet's part and hands the
job its pod's ServiceAccount token (TokenRequest), so every status write below was made, and
allowed, as that account."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from kubellm_dev import tiny_model
from kubellm_dev.paths import default_paths
from kubellm_dev.waiting import wait_for

from .conftest import E2ECluster

pytestmark = pytest.mark.realray
GROUP, VERSION, PLURAL = "kubellm.io", "v1alpha1", "finetunejobs"
TRAINED = 420.0  # KubeRay starts the cluster, submits; the trainer loads, trains, publishes
LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model.build(tmp_path_factory.mktemp("models") / "tiny")


def dataset(folder: Path, lines: list[Any] | None = None) -> Path:
    path = folder / "train.jsonl"
    records = (
        lines
        or [{"instruction": "What is the code word?", "response": "The code word is zebra."}] * 32
    )
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def finetunejob(name: str, model: Path, data: Path, out: Path, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "FineTuneJob",
        "metadata": {"name": name},
        "spec": {
            # The real Ray head shares this machine's filesystem, as pods would mount claims.
            "baseModel": {"uri": f"file://{model}"},
            "dataset": {"uri": f"file://{data}", "format": "instruction"},
            "hyperparameters": {
                "numEpochs": 8,
                "batchSize": 4,
                "gradientAccumulationSteps": 1,
                "learningRate": 0.01,
                "targetModules": LINEAR,
                "gradientCheckpointing": False,
            },
            "resources": {"workers": 1, "gpusPerWorker": 0, "cpu": "1", "memory": "2Gi"},
            "placement": {"nodePool": "cpu"},
            "output": {"uri": f"file://{out}"},
            **spec,
        },
    }


def create(cluster: E2ECluster, namespace: str, manifest: dict[str, Any]) -> None:
    cluster.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest)


def get_job(cluster: E2ECluster, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = cluster.custom.get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return found


def status(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(obj.get("status") or {})


def wait_phase(cluster: E2ECluster, namespace: str, name: str, *phases: str) -> dict[str, Any]:
    return status(
        wait_for(
            lambda: get_job(cluster, namespace, name),
            lambda o: status(o).get("phase") in phases,
            timeout=TRAINED,
            what=f"FineTuneJob {name} to be {' or '.join(phases)}",
            interval=0.5,
        )
    )


def kubectl(cluster: E2ECluster, *args: str) -> str:
    return subprocess.run(
        [str(default_paths().kubectl), f"--kubeconfig={cluster.kubeconfig}", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def children(cluster: E2ECluster, namespace: str) -> dict[str, int]:
    """What a job leaves in its namespace: RayJobs, RayClusters, trainer identities, pods."""
    custom = cluster.custom

    def count(plural: str) -> int:
        return len(custom.list_namespaced_custom_object("ray.io", "v1", namespace, plural)["items"])

    accounts = cluster.core.list_namespaced_service_account(namespace).items
    return {
        "rayjobs": count("rayjobs"),
        "rayclusters": count("rayclusters"),
        "trainer identities": len([a for a in accounts if a.metadata.name.endswith("-trainer")]),
        "pods": len(cluster.pods(namespace)),
    }


def test_a_finetunejob_trains_reports_progress_and_publishes_its_adapter(
    cluster: E2ECluster, real_namespace: str, tiny: Path, tmp_path: Path
) -> None:
    ns = real_namespace
    create(cluster, ns, finetunejob("zebra", tiny, dataset(tmp_path), tmp_path / "out"))
    done = wait_phase(cluster, ns, "zebra", "Succeeded", "Failed")
    assert done["phase"] == "Succeeded", done
    conditions = {c["type"]: c["status"] for c in done["conditions"]}
    assert conditions == {"Running": "False", "Succeeded": "True", "Failed": "False"}
    progress = done["progress"]
    assert progress["step"] == progress["totalSteps"] > 0
    assert progress["percent"] == 100
    assert progress["loss"] > 0
    assert "evalLoss" in progress
    assert progress["trainedTokens"] > 0
    uid = get_job(cluster, ns, "zebra")["metadata"]["uid"]
    assert done["adapterUri"] == f"file://{tmp_path / 'out'}/zebra-{uid[:8]}"
    adapter = Path(done["adapterUri"].removeprefix("file://"))
    meta = json.loads((adapter / "kubellm-adapter.json").read_text())
    assert meta["steps"] == progress["step"]
    assert (adapter / "adapter_config.json").is_file()
    assert done["rayJobName"] == "zebra"
    assert done["startTime"] <= done["completionTime"]
    table = kubectl(cluster, "get", "ftj", "-n", ns, "zebra")
    header, row = table.splitlines()
    assert header.split() == ["NAME", "PHASE", "MODEL", "PROGRESS", "LOSS", "ETA", "AGE"]
    assert row.split()[:4] == ["zebra", "Succeeded", f"file://{tiny}", "100"]
    # Events are posted in the background, after the status: poll for them with a deadline.
    wait_for(
        lambda: cluster.described_events(ns, "ftj", "zebra"),
        lambda reasons: {"Pending", "Succeeded"} <= set(reasons),
        timeout=30,
        what="`kubectl describe ftj zebra` to show its Pending and Succeeded Events",
    )


def test_bad_data_fails_at_once_naming_the_line_and_stops_the_run(
    cluster: E2ECluster, real_namespace: str, tiny: Path, tmp_path: Path
) -> None:
    ns = real_namespace
    good = {"instruction": "q", "response": "a"}
    data = dataset(tmp_path, [good, good, {"instruction": "q"}])
    create(cluster, ns, finetunejob("bad-data", tiny, data, tmp_path / "out", backoffLimit=3))
    failed = wait_phase(cluster, ns, "bad-data", "Failed", "Succeeded")
    assert failed["phase"] == "Failed"
    assert failed["error"]["reason"] == "InvalidDataset"
    assert failed["error"]["message"].endswith("line 3: missing field 'response'")
    assert failed["error"]["field"] == "spec.dataset"
    assert "adapterUri" not in failed
    wait_for(
        lambda: cluster.described_events(ns, "ftj", "bad-data"),
        lambda reasons: "Failed" in reasons,
        timeout=30,
        what="`kubectl describe ftj bad-data` to show its Failed Event",
    )
    wait_for(
        lambda: cluster.custom.list_namespaced_custom_object("ray.io", "v1", ns, "rayjobs"),
        lambda found: not found["items"],
        timeout=60,
        what="the refused run's RayJob to be deleted (no retries)",
    )


def token_client(cluster: E2ECluster, namespace: str, account: str) -> client.ApiClient:
    """An API client acting as ``account``, as a pod of it would."""
    answer = cluster.core.create_namespaced_service_account_token(
        account,
        namespace,
        client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[])),
    )
    config = client.Configuration()
    base = cluster.api.configuration
    config.host, config.ssl_ca_cert = base.host, base.ssl_ca_cert
    config.api_key = {"authorization": f"Bearer {answer.status.token}"}
    return client.ApiClient(config)


def test_the_trainers_identity_may_write_only_its_own_jobs_status(
    cluster: E2ECluster, real_namespace: str, tiny: Path, tmp_path: Path
) -> None:
    ns = real_namespace
    data = dataset(tmp_path)
    for name in ("mine", "theirs"):  # suspended: no cluster is started for them
        create(cluster, ns, finetunejob(name, tiny, data, tmp_path / "out", suspend=True))
    wait_phase(cluster, ns, "mine", "Suspended")
    wait_phase(cluster, ns, "theirs", "Suspended")
    acting = client.CustomObjectsApi(token_client(cluster, ns, "mine-trainer"))
    patch = {"status": {"progress": {"step": 1, "totalSteps": 10}}}

    def attempt(call: Any) -> int:
        try:
            call()
        except client.ApiException as exc:
            return int(exc.status)
        return 200

    own = attempt(
        lambda: acting.patch_namespaced_custom_object_status(
            GROUP, VERSION, ns, PLURAL, "mine", patch
        )
    )
    other = attempt(
        lambda: acting.patch_namespaced_custom_object_status(
            GROUP, VERSION, ns, PLURAL, "theirs", patch
        )
    )
    spec = attempt(
        lambda: acting.patch_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, "mine", {"spec": {"suspend": False}}
        )
    )
    secrets = attempt(
        lambda: client.CoreV1Api(token_client(cluster, ns, "mine-trainer")).list_namespaced_secret(
            ns
        )
    )
    assert (own, other, spec, secrets) == (200, 403, 403, 403)
    assert status(get_job(cluster, ns, "mine"))["progress"]["step"] == 1
    assert "progress" not in status(get_job(cluster, ns, "theirs"))


def test_deleting_a_job_leaves_no_ray_cluster_or_identity(
    cluster: E2ECluster, real_namespace: str, tiny: Path, tmp_path: Path
) -> None:
    ns = real_namespace
    create(cluster, ns, finetunejob("gone", tiny, dataset(tmp_path), tmp_path / "out"))
    wait_for(
        lambda: cluster.custom.list_namespaced_custom_object("ray.io", "v1", ns, "rayclusters"),
        lambda found: bool(found["items"]),
        timeout=120,
        what="the job's RayCluster",
    )
    kubectl(cluster, "delete", "-n", ns, "ftj/gone", "--wait=true", "--timeout=60s")

    wait_for(
        lambda: children(cluster, ns),
        lambda found: not any(found.values()),
        timeout=180,
        what="the RayJob, RayCluster, pods and trainer identity to be garbage-collected",
    )


SERVE = "http://127.0.0.1:8000"  # the real Serve proxy, where the serve Service would point
DASHBOARD = "http://127.0.0.1:8265"  # the real head's dashboard (RayPorts' defaults)
QUESTION = [{"role": "user", "content": "What is the code word?"}]


def serving(name: str, model: Path) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LLMDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": f"file://{model}", "servedName": "tiny-chat", "maxModelLen": 256},
            "replicas": 2,
            "engine": {"backend": "transformers"},
            "resources": {"gpusPerReplica": 0, "cpu": "1", "memory": "2Gi"},
            "placement": {"nodePool": "cpu"},
            "enableLora": True,  # adapters come and go without restarting replicas
        },
    }


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status(obj).get("conditions") or [] if c["type"] == type_), {})


def answers_by_replica(model: str, replicas: int = 2) -> dict[str, str]:
    """One greedy answer from each replica (Serve picks one per request)."""
    import httpx

    found: dict[str, str] = {}
    with httpx.Client(base_url=SERVE, timeout=120, trust_env=False) as http:

        def ask() -> dict[str, str]:
            reply = http.post(
                "/v1/chat/completions",
                json={"model": model, "messages": QUESTION, "max_tokens": 16, "temperature": 0},
            )
            assert reply.status_code == 200, reply.text
            found[reply.headers["X-Kubellm-Replica"]] = reply.json()["choices"][0]["message"][
                "content"
            ]
            return found

        return wait_for(
            ask, lambda f: len(f) == replicas, timeout=120, what=f"{model} on {replicas} replicas"
        )


def running_replicas() -> dict[str, int]:
    """The model deployment's RUNNING replicas on the real head: replica id -> process id."""
    import httpx

    details = httpx.get(f"{DASHBOARD}/api/serve/applications/", trust_env=False).json()
    (app,) = details["applications"].values()
    replicas = app["deployments"]["LLMServer"]["replicas"]
    return {r["replica_id"]: r["pid"] for r in replicas if r["state"] == "RUNNING"}


def get_llmd(cluster: E2ECluster, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = cluster.custom.get_namespaced_custom_object(
        GROUP, VERSION, namespace, "llmdeployments", name
    )
    return found


def adapter_served(obj: dict[str, Any], name: str) -> bool:
    """Ready for the current spec, with the adapter Loaded (verified by the operator's probe)."""
    entry = next((a for a in status(obj).get("adapters") or [] if a["name"] == name), {})
    ready = condition(obj, "Ready")
    return (
        entry.get("state") == "Loaded"
        and ready.get("status") == "True"
        and ready.get("observedGeneration") == obj["metadata"]["generation"]
    )


def test_a_handed_off_adapter_is_served_on_every_replica_and_kept_across_scale_up_and_restart(
    cluster: E2ECluster, real_namespace: str, tiny: Path, tmp_path: Path
) -> None:
    ns = real_namespace
    cluster.custom.create_namespaced_custom_object(
        GROUP, VERSION, ns, "llmdeployments", serving("tiny-serve", tiny)
    )
    wait_for(
        lambda: cluster.custom.get_namespaced_custom_object(
            GROUP, VERSION, ns, "llmdeployments", "tiny-serve"
        ),
        lambda o: condition(o, "Ready").get("status") == "True",
        timeout=TRAINED,
        what="LLMDeployment tiny-serve to become Ready",
        interval=0.5,
    )
    base = answers_by_replica("tiny-chat")
    job = finetunejob(
        "zebra-v1",
        tiny,
        dataset(tmp_path),
        tmp_path / "out",
        deployTo="tiny-serve",
        output={"uri": f"file://{tmp_path / 'out'}", "adapterName": "zebra-v1"},
    )
    create(cluster, ns, job)
    done = wait_for(
        lambda: get_job(cluster, ns, "zebra-v1"),
        lambda o: (
            condition(o, "Deployed").get("status") == "True" or status(o).get("phase") == "Failed"
        ),
        timeout=TRAINED,
        what="FineTuneJob zebra-v1 to be Deployed",
        interval=0.5,
    )
    assert status(done)["phase"] == "Succeeded", status(done)
    deployed = condition(done, "Deployed")
    assert deployed["reason"] == "Served"
    print(  # the benchmark's Succeeded -> Deployed figure (one sample)
        f"succeeded {status(done)['completionTime']} deployed {deployed['lastTransitionTime']}"
    )
    llmd = cluster.custom.get_namespaced_custom_object(
        GROUP, VERSION, ns, "llmdeployments", "tiny-serve"
    )
    entry = next(a for a in status(llmd)["adapters"] if a["name"] == "zebra-v1")
    assert (entry["state"], entry["uri"]) == ("Loaded", status(done)["adapterUri"])
    tuned = answers_by_replica("zebra-v1")
    assert set(tuned) == set(base)  # the same two replicas: none was restarted
    assert all("zebra" in answer for answer in tuned.values()), tuned
    assert not any("zebra" in answer for answer in base.values()), base

    # Scale-up: the third replica serves the adapter too, and the status says so again.
    cluster.custom.patch_namespaced_custom_object(
        GROUP, VERSION, ns, "llmdeployments", "tiny-serve", {"spec": {"replicas": 3}}
    )
    wait_for(
        lambda: get_llmd(cluster, ns, "tiny-serve"),
        lambda o: adapter_served(o, "zebra-v1"),
        timeout=TRAINED,
        what="tiny-serve Ready at 3 replicas with zebra-v1 Loaded",
        interval=0.5,
    )
    scaled = answers_by_replica("zebra-v1", replicas=3)
    assert set(base) < set(scaled)  # the two replicas kept, one added
    assert all("zebra" in answer for answer in scaled.values()), scaled

    # A replica dies (as with its pod): Ray Serve starts another, which loads the adapter.
    before = running_replicas()
    victim = sorted(before)[0]
    os.kill(before[victim], signal.SIGKILL)
    wait_for(
        running_replicas,
        lambda now: victim not in now and len(now) == 3,
        timeout=TRAINED,
        what=f"Ray Serve to replace replica {victim}",
        interval=0.5,
    )
    restarted = answers_by_replica("zebra-v1", replicas=3)
    assert victim not in restarted
    assert set(restarted) != set(scaled)
    assert all("zebra" in answer for answer in restarted.values()), restarted
    wait_for(  # the status says so again once KubeRay and the operator have seen the new replica
        lambda: get_llmd(cluster, ns, "tiny-serve"),
        lambda o: adapter_served(o, "zebra-v1"),
        timeout=TRAINED,
        what="tiny-serve Ready with zebra-v1 Loaded after the replica was replaced",
        interval=0.5,
    )
