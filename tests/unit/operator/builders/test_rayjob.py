"""The FineTuneJob builders: a golden RayJob and trainer identity per sample, byte-identical
output, the contract's train arguments in the entrypoint, placement as LLMDeployment's,
KubeRay's lifecycle controls all set."""

from __future__ import annotations

import random
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubellm_operator import names
from kubellm_operator.api.finetunejob import FineTuneJobSpec
from kubellm_operator.api.refs import Owner
from kubellm_operator.builders.rayjob import build_rayjob
from kubellm_operator.builders.trainer_identity import build_trainer_identity
from kubellm_operator.config import OperatorConfig
from kubellm_operator.crds import yamlio
from kubellm_runtime.contract import TRAIN_MODULE, TrainArgs
from tests.unit.operator.goldens import assert_golden, shuffled

REPO = Path(__file__).resolve().parents[4]
EXAMPLES = sorted((REPO / "examples" / "finetunejobs").glob("*.yaml"))
CONFIG = OperatorConfig()
UID = "7d1e2f3a-0000-4000-8000-000000000002"


def owner_of(doc: dict[str, Any]) -> Owner:
    return Owner(doc["metadata"]["name"], "default", UID, names.FINETUNEJOB_KIND)


def build(path: Path, config: OperatorConfig = CONFIG) -> list[dict[str, Any]]:
    doc = yaml.safe_load(path.read_text())
    owner = owner_of(doc)
    return [
        *build_trainer_identity(owner),
        build_rayjob(owner, FineTuneJobSpec.parse(doc["spec"]), config),
    ]


def args_of(rayjob: dict[str, Any]) -> TrainArgs:
    words = shlex.split(rayjob["spec"]["entrypoint"])
    assert words[:5] == ["python", "-m", TRAIN_MODULE, "--args-json", words[4]]
    return TrainArgs.model_validate_json(words[4])


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_sample_builds_its_golden_children(example: Path) -> None:
    assert_golden(f"{example.stem}.rayjob.yaml", yamlio.dump_all(build(example)))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_output_is_byte_identical_whatever_the_input_key_order(example: Path) -> None:
    doc = yaml.safe_load(example.read_text())
    outputs = {
        yamlio.dump(
            build_rayjob(
                owner_of(doc),
                FineTuneJobSpec.parse(shuffled(doc["spec"], random.Random(s))),
                CONFIG,
            )
        )
        for s in range(5)
    }
    assert len(outputs) == 1


def test_the_entrypoint_carries_the_contracts_train_arguments() -> None:
    (*_, rayjob) = build(REPO / "examples" / "finetunejobs" / "sql-lora-a100.yaml")
    args = args_of(rayjob)
    assert args.base_model.uri == "hf://meta-llama/Llama-3.1-8B-Instruct"
    assert (args.dataset.format, args.dataset.prompt_field) == ("instruction", "question")
    assert args.hyperparameters.target_modules == ("q_proj", "k_proj", "v_proj", "o_proj")
    assert (args.hyperparameters.lora_r, args.hyperparameters.learning_rate) == (16, 2e-4)
    assert (args.workers, args.gpus_per_worker) == (2, 1)
    run = f"sql-assistant-{UID[:8]}"
    assert args.output_uri == f"pvc://adapters/llama-8b/{run}"
    assert args.checkpoint_uri == f"pvc://adapters/llama-8b/.checkpoints/{run}"
    assert args.adapter_name == "sql-v1"
    assert args.status is not None
    assert (args.status.name, args.status.uid) == ("sql-assistant", UID)
    assert args.status.interval_s == CONFIG.train_status_interval_s


def test_each_training_worker_holds_the_cpus_its_pod_gets() -> None:
    (*_, cpu_job) = build(REPO / "examples" / "finetunejobs" / "tiny-cpu.yaml")
    assert args_of(cpu_job).cpus_per_worker == 2  # resources.cpu: "2"
    (*_, gpu_job) = build(REPO / "examples" / "finetunejobs" / "qlora-chat-s3.yaml")
    assert args_of(gpu_job).cpus_per_worker == 16


def test_workers_are_placed_like_llmdeployment_replicas() -> None:
    (*_, rayjob) = build(REPO / "examples" / "finetunejobs" / "qlora-chat-s3.yaml")
    cluster = rayjob["spec"]["rayClusterSpec"]
    (group,) = cluster["workerGroupSpecs"]
    pod = group["template"]["spec"]
    assert (group["replicas"], group["minReplicas"], group["maxReplicas"]) == (4, 4, 4)
    assert pod["containers"][0]["resources"]["limits"][CONFIG.gpu_resource] == "2"
    assert pod["nodeSelector"] == {CONFIG.node_pool_label: "h100"}
    keys = [t.get("key") for t in pod["tolerations"]]
    assert sorted(keys) == ["dedicated", "nvidia.com/gpu"]  # the default GPU taint and theirs
    assert pod["priorityClassName"] == "batch-low"
    assert pod["serviceAccountName"] == "support-chat-trainer"
    assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "s3-credentials"}}]
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"  # training ranks run on the workers only
    assert "nodeSelector" not in head["template"]["spec"]
    assert cluster["enableInTreeAutoscaling"] is False


def test_kuberays_lifecycle_controls_are_all_set() -> None:
    (*_, rayjob) = build(REPO / "examples" / "finetunejobs" / "qlora-chat-s3.yaml")
    spec = rayjob["spec"]
    assert spec["submissionMode"] == "K8sJobMode"
    assert spec["shutdownAfterJobFinishes"] is True
    assert spec["ttlSecondsAfterFinished"] == 600
    assert spec["activeDeadlineSeconds"] == 86400
    assert spec["backoffLimit"] == 4
    assert spec["suspend"] is False
    assert spec["preRunningDeadlineSeconds"] == CONFIG.rayjob_pre_running_deadline_s
    rules = OperatorConfig(rayjob_deletion_rules=True, rayjob_submission_mode="HTTPMode")
    (*_, ruled) = build(REPO / "examples" / "finetunejobs" / "qlora-chat-s3.yaml", rules)
    assert ruled["spec"]["submissionMode"] == "HTTPMode"
    assert "shutdownAfterJobFinishes" not in ruled["spec"]  # KubeRay refuses both together
    assert "ttlSecondsAfterFinished" not in ruled["spec"]
    assert ruled["spec"]["deletionStrategy"]["deletionRules"] == [
        {"policy": "DeleteCluster", "condition": {"jobStatus": s, "ttlSeconds": 600}}
        for s in ("SUCCEEDED", "FAILED")
    ]


def test_a_claim_read_and_written_is_mounted_writable_once() -> None:
    (*_, rayjob) = build(REPO / "examples" / "finetunejobs" / "tiny-cpu.yaml")
    (group,) = rayjob["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    pod = group["template"]["spec"]
    claims = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert claims == [
        {"name": "pvc-models", "persistentVolumeClaim": {"claimName": "models", "readOnly": False}}
    ]
    mounts = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "pvc-models"]
    assert mounts == [{"name": "pvc-models", "mountPath": "/mnt/pvc/models"}]
    assert "tolerations" not in pod  # CPU workers do not tolerate the GPU taint
    assert group["groupName"] == "cpu"


def test_the_trainer_may_patch_only_this_jobs_status() -> None:
    account, role, binding = build_trainer_identity(Owner("sql", "team", UID, "FineTuneJob"))
    assert account["metadata"]["name"] == role["metadata"]["name"] == "sql-trainer"
    assert role["rules"] == [
        {
            "apiGroups": ["kubellm.io"],
            "resources": ["finetunejobs/status"],
            "resourceNames": ["sql"],
            "verbs": ["get", "patch"],
        }
    ]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "sql-trainer", "namespace": "team"}
    ]
    for child in (account, role, binding):
        (ref,) = child["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["uid"], ref["controller"]) == ("FineTuneJob", UID, True)


def test_long_job_names_make_valid_child_names() -> None:
    name = "a" * 63
    owner = Owner(name, "ns", UID, names.FINETUNEJOB_KIND)
    (*identity, rayjob) = [
        *build_trainer_identity(owner),
        build_rayjob(
            owner,
            FineTuneJobSpec.parse(
                yaml.safe_load((REPO / "examples" / "finetunejobs" / "tiny-cpu.yaml").read_text())[
                    "spec"
                ]
            ),
            CONFIG,
        ),
    ]
    assert len(rayjob["metadata"]["name"]) <= names.MAX_RAYJOB_NAME
    assert all(len(c["metadata"]["name"]) <= 63 for c in identity)
