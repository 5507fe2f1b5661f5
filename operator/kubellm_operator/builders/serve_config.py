"""The runtime contract and Ray Serve config (serveConfigV2) of one LLMDeployment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from kubellm_operator.api.llmdeployment import LLMDeploymentSpec
from kubellm_operator.builders.quantities import whole_cores
from kubellm_operator.config import OperatorConfig
from kubellm_runtime.contract import (
    API_KEY_ENV,
    SERVE_APP,
    SERVE_DEPLOYMENT,
    SERVE_IMPORT_PATH,
    AdapterArgs,
    EngineArgs,
    LimitsArgs,
    LoraArgs,
    ModelArgs,
    ReplicaConfig,
    ServeArgs,
)


@dataclass(frozen=True)
class ResolvedAdapter:
    """An adapter whose location is known (fromFineTuneJob already looked up)."""

    name: str
    uri: str


def serve_args(spec: LLMDeploymentSpec) -> ServeArgs:
    model = spec.model
    return ServeArgs(
        model=ModelArgs(
            uri=model.uri,
            served_name=model.default_served_name(),
            revision=model.revision,
            dtype=model.dtype,
            max_model_len=model.max_model_len,
            quantization=model.quantization,
            trust_remote_code=model.trust_remote_code,
        ),
        engine=EngineArgs(
            backend=spec.engine.backend,
            tensor_parallel_size=spec.resources.tensor_parallel_size,
            pipeline_parallel_size=spec.resources.pipeline_parallel_size,
            gpu_memory_utilization=spec.engine.gpu_memory_utilization,
            max_num_seqs=spec.engine.max_num_seqs,
            enable_prefix_caching=spec.engine.enable_prefix_caching,
            tool_call_parser=spec.engine.tool_call_parser,
            extra_args=dict(spec.engine.extra_args),
        ),
        lora=LoraArgs(
            # From the spec's list, not the resolved one: an adapter a FineTuneJob has yet to
            # produce must not restart the replicas when it arrives.
            enabled=spec.enable_lora if spec.enable_lora is not None else bool(spec.adapters),
            max_loras=spec.max_loras,
            max_lora_rank=spec.max_lora_rank,
        ),
        limits=LimitsArgs(
            max_inflight=spec.backpressure.ongoing(spec.engine.max_num_seqs),
            retry_after_s=spec.backpressure.retry_after_seconds,
            request_timeout_s=spec.backpressure.request_timeout_seconds,
        ),
        api_key_env=API_KEY_ENV if spec.api_key_secret_ref else None,
    )


def contract_args(spec: LLMDeploymentSpec) -> dict[str, Any]:
    """The application's ``args`` as written in serveConfigV2 (and as Ray reports them back).
    A change restarts the replicas (the engine is built from them)."""
    return serve_args(spec).model_dump(mode="json", exclude_none=True)


def replica_config(
    spec: LLMDeploymentSpec, adapters: tuple[ResolvedAdapter, ...]
) -> dict[str, Any]:
    """The model deployment's ``user_config``: what every replica applies live (Ray Serve
    calls its ``reconfigure``), so adapter changes restart nothing."""
    config = ReplicaConfig(
        adapters=tuple(AdapterArgs(name=a.name, uri=a.uri) for a in adapters),
        adapter_sources=tuple(spec.adapter_sources),
    )
    return config.model_dump(mode="json")


def _backpressure(spec: LLMDeploymentSpec) -> dict[str, Any]:
    """Ray Serve's limits: at most maxOngoing per replica, a bounded queue at each proxy, and
    beyond it 429 with Retry-After (Ray Serve's default answer would be 503 without one), the
    same answer the runtime gives in local mode."""
    seqs, limits = spec.engine.max_num_seqs, spec.backpressure
    return {
        "max_ongoing_requests": limits.ongoing(seqs),
        "max_queued_requests": limits.queued(seqs),
        "backpressure_config": {
            "status_code": 429,
            "retry_after_s": limits.retry_after_seconds,
        },
    }


def _replica_resources(spec: LLMDeploymentSpec) -> dict[str, Any]:
    """Ray resources of one model replica: one GPU, or a placement group spanning its GPUs."""
    gpus = spec.resources.gpus_per_replica
    if gpus == 0:
        # A CPU engine computes on the CPUs it holds: Ray sets OMP_NUM_THREADS to the actor's
        # num_cpus, so a replica asking for 1 would be held to one thread of its worker's
        # cores. It takes its whole worker pod.
        return {"ray_actor_options": {"num_cpus": whole_cores(spec.resources.cpu), "num_gpus": 0}}
    if gpus == 1:
        return {"ray_actor_options": {"num_cpus": 1, "num_gpus": gpus}}
    # vLLM's Ray executor places one worker per GPU inside the replica's placement group:
    # tensor parallel ranks must share a node (STRICT_PACK); pipeline stages may not (PACK).
    bundles = [{"CPU": 1, "GPU": 1}] + [{"GPU": 1} for _ in range(gpus - 1)]
    strategy = "STRICT_PACK" if spec.resources.pipeline_parallel_size == 1 else "PACK"
    return {
        "ray_actor_options": {"num_cpus": 1, "num_gpus": 0},
        "placement_group_bundles": bundles,
        "placement_group_strategy": strategy,
    }


def _replicas(spec: LLMDeploymentSpec) -> dict[str, Any]:
    if spec.autoscaling is None:
        return {"num_replicas": spec.replicas}
    return {
        "autoscaling_config": {
            "min_replicas": spec.autoscaling.min_replicas,
            "max_replicas": spec.autoscaling.max_replicas,
            "initial_replicas": spec.replicas,
            "target_ongoing_requests": spec.autoscaling.target_ongoing_requests,
        }
    }


DRAIN_MARGIN_S = 10
"""How much longer than the request timeout a stopping replica drains."""


def serve_config(
    spec: LLMDeploymentSpec, adapters: tuple[ResolvedAdapter, ...], config: OperatorConfig
) -> str:
    """serveConfigV2 as KubeRay wants it: a YAML string, keys sorted so output is stable."""
    deployment = {
        "name": SERVE_DEPLOYMENT,
        **_backpressure(spec),
        # The runtime's health check fails until the model is loaded, so Ray Serve (and with it
        # KubeRay's application status) reports the replica healthy only when it can answer.
        "health_check_period_s": config.health_check_period_s,
        "health_check_timeout_s": config.health_check_timeout_s,
        # A stopping replica waits for its requests longer than any may run (the runtime ends
        # one past its timeout with an error event), so Ray never cuts a stream mid-body.
        "graceful_shutdown_timeout_s": spec.backpressure.request_timeout_seconds + DRAIN_MARGIN_S,
        **_replicas(spec),
        **_replica_resources(spec),
        "user_config": replica_config(spec, adapters),
    }
    application = {
        "name": SERVE_APP,
        "import_path": SERVE_IMPORT_PATH,
        "route_prefix": "/",
        "args": contract_args(spec),
        "deployments": [deployment],
    }
    # Serve's declarative API listens on 0.0.0.0:8000 by default, which KubeRay's serve
    # Service targets; no http_options needed (and they cannot change on a running cluster).
    return yaml.safe_dump({"applications": [application]}, sort_keys=True, width=120)
