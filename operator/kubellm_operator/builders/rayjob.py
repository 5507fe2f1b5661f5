"""The RayJob child of a FineTuneJob: the trainer's entrypoint with the contract's arguments,
a CPU head and the training workers on the requested GPU pool, KubeRay's lifecycle controls
set explicitly (none left to KubeRay's defaults)."""

from __future__ import annotations

import shlex
from typing import Any

from kubellm_operator import names
from kubellm_operator.api.finetunejob import OUTPUT_FIELD, FineTuneJobSpec
from kubellm_operator.api.refs import Owner
from kubellm_operator.builders import placement, storage
from kubellm_operator.builders.owner import owner_reference
from kubellm_operator.builders.quantities import whole_cores
from kubellm_operator.config import OperatorConfig
from kubellm_runtime.contract import (
    MODEL_CACHE_DIR,
    MODEL_CACHE_DIR_ENV,
    TRAIN_MODULE,
    BaseModelArgs,
    DatasetArgs,
    HyperparameterArgs,
    StatusTarget,
    TrainArgs,
)

HEAD_PORTS = (
    {"containerPort": 6379, "name": "gcs-server"},
    {"containerPort": 8265, "name": "dashboard"},
    {"containerPort": 10001, "name": "client"},
)


def run_name(owner: Owner) -> str:
    """The run's folder under spec.output.uri: the job's name and uid, so a re-created
    namesake never resumes (or overwrites) an earlier job's run."""
    return f"{owner.name}-{owner.uid[:8]}"


def adapter_uri(owner: Owner, spec: FineTuneJobSpec) -> str:
    return f"{spec.output.uri.rstrip('/')}/{run_name(owner)}"


def checkpoint_uri(owner: Owner, spec: FineTuneJobSpec) -> str:
    return f"{spec.output.uri.rstrip('/')}/.checkpoints/{run_name(owner)}"


def adapter_name(owner: Owner, spec: FineTuneJobSpec) -> str:
    return spec.output.adapter_name or owner.name


def train_args(owner: Owner, spec: FineTuneJobSpec, config: OperatorConfig) -> TrainArgs:
    data = spec.dataset
    return TrainArgs(
        base_model=BaseModelArgs(
            uri=spec.base_model.uri,
            revision=spec.base_model.revision,
            trust_remote_code=spec.base_model.trust_remote_code,
        ),
        dataset=DatasetArgs(
            uri=data.uri,
            format=data.format,
            text_field=data.text_field,
            prompt_field=data.prompt_field,
            response_field=data.response_field,
            messages_field=data.messages_field,
            validation_split=data.validation_split,
        ),
        method=spec.method,
        hyperparameters=HyperparameterArgs.model_validate(spec.hyperparameters.model_dump()),
        workers=spec.resources.workers,
        gpus_per_worker=spec.resources.gpus_per_worker,
        cpus_per_worker=whole_cores(spec.resources.cpu),
        output_uri=adapter_uri(owner, spec),
        checkpoint_uri=checkpoint_uri(owner, spec),
        adapter_name=adapter_name(owner, spec),
        status=StatusTarget(
            namespace=owner.namespace,
            name=owner.name,
            uid=owner.uid,
            interval_s=config.train_status_interval_s,
        ),
    )


def entrypoint(args: TrainArgs) -> str:
    return f"python -m {TRAIN_MODULE} --args-json {shlex.quote(args.model_dump_json())}"


def _claims(spec: FineTuneJobSpec) -> tuple[list[str], list[str]]:
    """The claims read (the model, the data) and written (the output)."""
    named = spec.claims.items()
    read = [claim for claim, fields in named if set(fields) - {OUTPUT_FIELD}]
    return read, [claim for claim, fields in named if OUTPUT_FIELD in fields]


def _env_from(spec: FineTuneJobSpec) -> list[dict[str, Any]]:
    refs = {r.name for r in (spec.base_model.secret_ref, spec.dataset.secret_ref) if r}
    return [{"secretRef": {"name": name}} for name in sorted(refs)]


def _container(
    name: str, spec: FineTuneJobSpec, config: OperatorConfig, limits: dict[str, Any]
) -> dict[str, Any]:
    read, write = _claims(spec)
    _, mounts = storage.claim_volumes(read, write)
    container: dict[str, Any] = {
        "name": name,
        "image": spec.image or config.runtime_image,
        "resources": {"limits": dict(limits), "requests": dict(limits)},
        "env": [
            *(e.to_wire() for e in spec.env),
            {"name": MODEL_CACHE_DIR_ENV, "value": MODEL_CACHE_DIR},
        ],
        "volumeMounts": [
            storage.shm_mount(),
            {"name": storage.CACHE_VOLUME, "mountPath": MODEL_CACHE_DIR},
            *mounts,
        ],
    }
    if env_from := _env_from(spec):
        container["envFrom"] = env_from
    return container


def _pod(
    owner: Owner, spec: FineTuneJobSpec, config: OperatorConfig, container: dict[str, Any]
) -> dict[str, Any]:
    read, write = _claims(spec)
    volumes, _ = storage.claim_volumes(read, write)
    return {
        "metadata": {"labels": names.child_labels(names.LABEL_FINETUNEJOB, owner.name)},
        "spec": {
            # The trainer writes progress with this identity: this job's status, nothing else.
            "serviceAccountName": names.trainer_identity_name(owner.name),
            "containers": [container],
            "volumes": [storage.shm_volume(config), storage.cache_volume(config), *volumes],
        },
    }


def ray_cluster_spec(owner: Owner, spec: FineTuneJobSpec, config: OperatorConfig) -> dict[str, Any]:
    res = spec.resources
    head = _container(
        "ray-head", spec, config, {"cpu": config.head_cpu, "memory": config.head_memory}
    )
    head["ports"] = [dict(p) for p in HEAD_PORTS]
    head_pod = _pod(owner, spec, config, head)
    if spec.placement.priority_class_name:
        head_pod["spec"]["priorityClassName"] = spec.placement.priority_class_name
    limits: dict[str, Any] = {"cpu": res.cpu, "memory": res.memory}
    if res.gpus_per_worker:
        limits[config.gpu_resource] = str(res.gpus_per_worker)
    worker_pod = _pod(owner, spec, config, _container("ray-worker", spec, config, limits))
    worker_pod["spec"] |= placement.worker_pod_fields(
        spec.placement, res.gpu_type, config, gpus=res.gpus_per_worker > 0
    )
    return {
        "rayVersion": spec.ray_version or config.ray_version,
        "enableInTreeAutoscaling": False,  # a fixed worker group: one Ray Train rank each
        "headGroupSpec": {
            # num-cpus 0: the driver only; training ranks run on the workers.
            "rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0", "num-gpus": "0"},  # noqa: S104
            "template": head_pod,
        },
        "workerGroupSpecs": [
            {
                "groupName": "gpu" if res.gpus_per_worker else "cpu",
                "replicas": res.workers,
                "minReplicas": res.workers,
                "maxReplicas": res.workers,
                "rayStartParams": {},
                "template": worker_pod,
            }
        ],
    }


def _lifecycle(spec: FineTuneJobSpec, config: OperatorConfig) -> dict[str, Any]:
    """Retries, deadlines, suspension and cleanup, all explicit."""
    fields: dict[str, Any] = {"backoffLimit": spec.backoff_limit, "suspend": spec.suspend}
    if spec.active_deadline_seconds is not None:
        fields["activeDeadlineSeconds"] = spec.active_deadline_seconds
    if config.rayjob_pre_running_deadline_s is not None:
        fields["preRunningDeadlineSeconds"] = config.rayjob_pre_running_deadline_s
    if config.rayjob_deletion_rules:
        ttl = spec.ttl_seconds_after_finished
        fields["deletionStrategy"] = {
            "deletionRules": [
                {"policy": "DeleteCluster", "condition": {"jobStatus": s, "ttlSeconds": ttl}}
                for s in ("SUCCEEDED", "FAILED")
            ]
        }
    else:
        fields["shutdownAfterJobFinishes"] = True
        fields["ttlSecondsAfterFinished"] = spec.ttl_seconds_after_finished
    return fields


def build_rayjob(owner: Owner, spec: FineTuneJobSpec, config: OperatorConfig) -> dict[str, Any]:
    """The full desired RayJob; identical input gives identical output, byte for byte."""
    return {
        "apiVersion": names.RAY_API_VERSION,
        "kind": names.RAYJOB_KIND,
        "metadata": {
            "name": names.rayjob_name(owner.name),
            "namespace": owner.namespace,
            "labels": names.child_labels(names.LABEL_FINETUNEJOB, owner.name),
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": {
            "entrypoint": entrypoint(train_args(owner, spec, config)),
            "submissionMode": config.rayjob_submission_mode,
            **_lifecycle(spec, config),
            "rayClusterSpec": ray_cluster_spec(owner, spec, config),
        },
    }
