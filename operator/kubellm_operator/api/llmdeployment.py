"""LLMDeployment (kubellm.io/v1alpha1): serve a model with vLLM on a KubeRay RayService."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from kubellm_operator.api import engine_args
from kubellm_operator.api.base import ApiModel, Rule
from kubellm_operator.api.common import (
    Condition,
    DnsLabel,
    EnvVar,
    Placement,
    Quantity,
    RayVersion,
    SecretKeyRef,
    SecretRef,
    ServedName,
)
from kubellm_operator.api.sources import SourceUri, pvc_claims

Quantization = Literal["awq", "gptq", "fp8", "bitsandbytes", "gguf", "compressed-tensors"]


class ModelSpec(ApiModel):
    """The base model to serve."""

    uri: SourceUri
    """Weights: hf://org/name, s3://bucket/path, gs://bucket/path, pvc://claim/path, file:///path."""
    revision: str | None = None
    """Revision (branch, tag or commit) for hf:// sources."""
    served_name: ServedName | None = None
    """Name clients pass as `model` (default: the last path element of uri)."""
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = "auto"
    """Weight and activation dtype."""
    max_model_len: int | None = Field(default=None, ge=16, le=10_485_760)
    """Context length limit (default: the model's own)."""
    quantization: Quantization | None = None
    """Quantization method of the weights."""
    trust_remote_code: bool = False
    """Allow model code from the model repository to run."""
    secret_ref: SecretRef | None = None
    """Secret with download credentials (HF_TOKEN, AWS_* keys), injected as environment."""

    def default_served_name(self) -> str:
        return self.served_name or self.uri.rstrip("/").rsplit("/", 1)[-1]


class AutoscalingSpec(ApiModel):
    """Ray Serve autoscaling of model replicas by ongoing requests."""

    min_replicas: int = Field(default=1, ge=0, le=1000)
    """Fewest replicas (0 scales to zero)."""
    max_replicas: int = Field(default=1, ge=1, le=1000)
    """Most replicas; GPU workers are provisioned up to this."""
    target_ongoing_requests: float = Field(default=8.0, gt=0)
    """Ongoing requests per replica Ray Serve aims for."""

    rules = (
        Rule(
            cel="self.minReplicas <= self.maxReplicas",
            message="minReplicas must be less than or equal to maxReplicas",
            check=lambda a: a.min_replicas <= a.max_replicas,
            field_path=".minReplicas",
        ),
    )


class ResourcesSpec(ApiModel):
    """GPUs and parallelism of one model replica."""

    gpus_per_replica: int = Field(default=1, ge=0, le=64)
    """GPUs one replica uses: tensorParallelSize * pipelineParallelSize (0 for CPU-only engines)."""
    tensor_parallel_size: int = Field(default=1, ge=1, le=16)
    """GPUs that split every layer; they share one node."""
    pipeline_parallel_size: int = Field(default=1, ge=1, le=16)
    """Pipeline stages; each stage is one node, so a replica spans this many nodes."""
    gpu_type: Annotated[str, StringConstraints(max_length=63)] | None = None
    """GPU product to require (nvidia.com/gpu.product label), e.g. NVIDIA-A100-SXM4-80GB."""
    cpu: Quantity = "8"
    """CPU per GPU worker pod."""
    memory: Quantity = "64Gi"
    """Memory per GPU worker pod."""

    rules = (
        Rule(
            cel="self.gpusPerReplica % self.tensorParallelSize == 0",
            message="gpusPerReplica must be a multiple of tensorParallelSize",
            check=lambda r: r.gpus_per_replica % r.tensor_parallel_size == 0,
            field_path=".gpusPerReplica",
        ),
        Rule(
            cel=(
                "self.gpusPerReplica == 0 || "
                "self.gpusPerReplica == self.tensorParallelSize * self.pipelineParallelSize"
            ),
            message="gpusPerReplica must equal tensorParallelSize * pipelineParallelSize",
            check=lambda r: (
                r.gpus_per_replica in (0, r.tensor_parallel_size * r.pipeline_parallel_size)
            ),
            field_path=".gpusPerReplica",
        ),
        Rule(
            cel=(
                "self.gpusPerReplica > 0"
                " || (self.tensorParallelSize == 1 && self.pipelineParallelSize == 1)"
            ),
            message="a CPU-only replica (gpusPerReplica 0) cannot use tensor/pipeline parallelism",
            check=lambda r: (
                r.gpus_per_replica > 0
                or (r.tensor_parallel_size == 1 and r.pipeline_parallel_size == 1)
            ),
            field_path=".gpusPerReplica",
        ),
    )


class EngineSpec(ApiModel):
    """Engine options."""

    backend: Literal["vllm", "transformers"] = "vllm"
    """vllm: the production engine. transformers: a slow fallback for nodes vLLM cannot run on
    (one request at a time per replica, no tensor or pipeline parallelism)."""
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    """Fraction of GPU memory vLLM may use."""
    max_num_seqs: int | None = Field(default=None, ge=1, le=65536)
    """Most sequences batched together."""
    enable_prefix_caching: bool = True
    """Reuse KV cache across requests that share a prefix."""
    tool_call_parser: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,64}$")] | None = None
    """vLLM's tool-call parser for the model family (hermes, llama3_json, mistral, ...), so
    tool_choice "auto" reads calls from the model's text. Without it, requests with tools
    need tool_choice "required" or a named function (constrained output, any model)."""
    extra_args: dict[
        Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]*$", max_length=64)], str
    ] = Field(default_factory=dict, max_length=64)
    """Further vLLM engine arguments by name (e.g. enforce-eager: "true"), checked against the
    engine arguments of the vLLM release the runtime image carries."""

    @field_validator("extra_args")
    @classmethod
    def _known_engine_args(cls, extra: dict[str, str]) -> dict[str, str]:
        if (wrong := engine_args.problem(extra)) is not None:
            raise ValueError(wrong)
        return extra


# vLLM's usual max_num_seqs: what a replica is sized for when engine.maxNumSeqs is unset.
DEFAULT_MAX_NUM_SEQS = 256


class BackpressureSpec(ApiModel):
    """Overload handling per replica. Requests beyond these limits are answered at once with
    429 and Retry-After (by Ray Serve's proxy and the runtime alike), never queued without
    bound or left to time out."""

    max_ongoing_requests: int | None = Field(default=None, ge=1, le=65536)
    """Requests one replica works on at once (default: engine.maxNumSeqs, else 256: what the
    engine batches, so none waits invisibly inside it)."""
    max_queued_requests: int | None = Field(default=None, ge=0, le=1_000_000)
    """Requests each Ray Serve proxy holds waiting for a replica slot (default: as many as
    maxOngoingRequests, one more batch). 0 rejects whatever finds every slot taken."""
    retry_after_seconds: int = Field(default=1, ge=1, le=3600)
    """Retry-After sent with a 429."""
    request_timeout_seconds: int = Field(default=600, ge=1, le=86400)
    """A generation still running after this long is aborted: a plain answer gets a 504, a
    stream ends with an error event. A replica that Ray Serve stops (a rollout, a scale-down)
    drains for this long plus a margin, so no stream is ever cut mid-body by its stop."""

    def ongoing(self, max_num_seqs: int | None) -> int:
        return self.max_ongoing_requests or max_num_seqs or DEFAULT_MAX_NUM_SEQS

    def queued(self, max_num_seqs: int | None) -> int:
        if self.max_queued_requests is not None:
            return self.max_queued_requests
        return self.ongoing(max_num_seqs)


class AdapterSpec(ApiModel):
    """A LoRA adapter served beside the base model, selected by `model` name."""

    name: ServedName
    """Name clients pass as `model` to use this adapter."""
    uri: SourceUri | None = None
    """Where the adapter is (file://, pvc://, s3://, gs://, hf://)."""
    from_fine_tune_job: DnsLabel | None = None
    """Use the adapter a FineTuneJob in this namespace produced."""

    rules = (
        Rule(
            cel="has(self.uri) != has(self.fromFineTuneJob)",
            message="set exactly one of uri or fromFineTuneJob",
            check=lambda a: (a.uri is None) != (a.from_fine_tune_job is None),
        ),
    )


class LLMDeploymentSpec(ApiModel):
    """Desired state of an LLMDeployment."""

    model: ModelSpec
    """The model to serve."""
    replicas: int = Field(default=1, ge=0, le=1000)
    """Model replicas (with autoscaling: the initial count). Target of `kubectl scale`."""
    autoscaling: AutoscalingSpec | None = None
    """Scale replicas with load between minReplicas and maxReplicas."""
    resources: ResourcesSpec = ResourcesSpec()
    """GPUs, parallelism, CPU and memory of a replica."""
    placement: Placement = Placement()
    """Node pool, selectors, tolerations, affinity and priority of the GPU workers."""
    engine: EngineSpec = EngineSpec()
    """Engine backend and options."""
    backpressure: BackpressureSpec = BackpressureSpec()
    """Per-replica request limits; beyond them, 429 with Retry-After at once."""
    adapters: list[AdapterSpec] = Field(default_factory=list, max_length=64)
    """LoRA adapters to serve."""
    adapter_sources: list[SourceUri] = Field(default_factory=list, max_length=16)
    """URI prefixes clients may name adapters from (pvc://claim/dir, s3://bucket/prefix, ...),
    e.g. /chat's adapter_path. Empty: clients cannot name adapter sources. The adapters listed
    in `adapters` need no entry here. Changing adapters or this list restarts no replica."""
    enable_lora: bool | None = None
    """Serve LoRA adapters (it costs some speed on every step). Default: on when adapters are
    listed; set true to add adapters later without restarting replicas."""
    max_loras: int = Field(default=4, ge=1, le=64)
    """LoRA adapters active in one batch."""
    max_lora_rank: Literal[1, 8, 16, 32, 64, 128, 256, 320, 512] = 16
    """Largest LoRA rank accepted."""
    upgrade_strategy: Literal["NewCluster", "None"] = "NewCluster"
    """NewCluster: zero downtime, needs spare GPUs. None: update in place (GPU-scarce clusters)."""
    image: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = None
    """Runtime image (default: the operator's configured runtime image)."""
    env: list[EnvVar] = Field(default_factory=list)
    """Extra environment variables for the Ray containers."""
    api_key_secret_ref: SecretKeyRef | None = None
    """Secret key holding the API key clients must send (Authorization: Bearer)."""
    ray_version: RayVersion | None = None
    """Ray version of the runtime image (default: the operator's)."""

    rules = (
        Rule(
            cel=(
                "!has(self.enableLora) || self.enableLora"
                " || !has(self.adapters) || size(self.adapters) == 0"
            ),
            message="adapters need LoRA: remove enableLora: false or the adapters",
            check=lambda s: s.enable_lora is not False or not s.adapters,
            field_path=".enableLora",
        ),
        Rule(
            cel=(
                "!has(self.engine) || !has(self.engine.backend)"
                " || self.engine.backend == 'vllm' || !has(self.resources)"
                " || ((!has(self.resources.tensorParallelSize)"
                " || self.resources.tensorParallelSize == 1)"
                " && (!has(self.resources.pipelineParallelSize)"
                " || self.resources.pipelineParallelSize == 1))"
            ),
            message="the transformers backend serves without tensor or pipeline parallelism",
            check=lambda s: (
                s.engine.backend == "vllm"
                or s.resources.tensor_parallel_size == s.resources.pipeline_parallel_size == 1
            ),
            field_path=".engine.backend",
        ),
        Rule(
            cel=(
                "!has(self.adapters)"
                " || self.adapters.all(a, self.adapters.exists_one(b, b.name == a.name))"
            ),
            message="adapter names must be unique",
            check=lambda s: len({a.name for a in s.adapters}) == len(s.adapters),
            field_path=".adapters",
        ),
        Rule(
            cel=(
                "!has(self.adapters) || !has(self.model.servedName)"
                " || self.adapters.all(a, a.name != self.model.servedName)"
            ),
            message="an adapter name must differ from model.servedName",
            check=lambda s: all(a.name != s.model.served_name for a in s.adapters),
            field_path=".adapters",
        ),
        Rule(
            cel=(
                "!has(self.autoscaling) || (self.replicas >= self.autoscaling.minReplicas"
                " && self.replicas <= self.autoscaling.maxReplicas)"
            ),
            message="with autoscaling, replicas must lie between minReplicas and maxReplicas",
            check=lambda s: (
                s.autoscaling is None
                or s.autoscaling.min_replicas <= s.replicas <= s.autoscaling.max_replicas
            ),
            field_path=".replicas",
        ),
    )

    @property
    def claims(self) -> dict[str, tuple[str, ...]]:
        """The PersistentVolumeClaims it names (claim → the fields naming it)."""
        return pvc_claims(
            [
                ("spec.model.uri", self.model.uri),
                *((f"spec.adapters[{i}].uri", a.uri) for i, a in enumerate(self.adapters)),
                *((f"spec.adapterSources[{i}]", s) for i, s in enumerate(self.adapter_sources)),
            ]
        )


class AdapterStatus(ApiModel):
    """What the runtime actually serves for one adapter."""

    name: str
    """Adapter name."""
    state: Literal["Pending", "Loaded", "Failed"]
    """Pending until served, Loaded when verified served, Failed with a message."""
    uri: str | None = None
    """Resolved adapter location."""
    message: str = ""
    """Why it is not loaded."""


Phase = Literal["Pending", "Deploying", "Upgrading", "Ready", "Failed"]
DefaultsState = Literal["Current", "Outdated", "Queued", "Upgrading"]


class DefaultsStatus(ApiModel):
    """The operator-level defaults (runtime image, Ray version, head resources, shm size) the
    Ray cluster is built with. An operator upgrade never changes them by itself."""

    state: DefaultsState
    """Current: the operator's defaults. Outdated: earlier ones, kept until a rollout is asked
    for (annotation kubellm.io/adopt-defaults=<latestRevision> or latest, or the operator's
    defaultsRollout paced). Queued: asked for, waiting while other deployments move (at most
    defaultsRollout.maxInFlight at once). Upgrading: moving to them, until Ready."""
    revision: str
    """Digest of the defaults the cluster is built with."""
    latest_revision: str
    """Digest of the operator's current defaults (equal to revision when Current)."""
    runtime_image: str | None = None
    """The image it runs when the spec names none (unset: the spec's image)."""
    ray_version: str | None = None
    """The Ray version when the spec names none (unset: the spec's)."""
    message: str = ""
    """What differs, and how to move on."""


class LLMDeploymentStatus(ApiModel):
    """Observed state of an LLMDeployment."""

    phase: Phase | None = None
    """A summary of the conditions: Pending (no child yet, or pods unschedulable), Deploying,
    Upgrading (the previous spec still serves), Ready or Failed."""
    conditions: list[Condition] = Field(default_factory=list)
    """Ready: True only while the current spec is served (KubeRay observed the RayService the
    operator applied for this generation, no upgrade pending, the application runs it, every
    adapter is served). Reconciling: True while a rollout or recovery is under way, with what
    it waits for. Stalled: True when it cannot go on without somebody acting (invalid spec,
    unschedulable pods, failed deploy, forbidden write, KubeRay missing); retried meanwhile.
    RayClusterReady, ServeReady and AdaptersReady describe the cluster that runs (or will run)
    the current spec."""
    observed_generation: int | None = None
    """Generation of the spec this status describes."""
    endpoint: str | None = None
    """In-cluster base URL of the OpenAI-compatible API (set while any cluster serves, also the
    previous one during an upgrade)."""
    replicas: int | None = None
    """Model replicas whose worker pods run on the serving cluster (the scale subresource's
    current count)."""
    ready_replicas: int | None = None
    """Model replicas on the serving cluster with all their workers ready."""
    selector: str | None = None
    """Label selector of the Ray pods (for the scale subresource)."""
    adapters: list[AdapterStatus] = Field(default_factory=list)
    """Per-adapter state."""
    ray_service_name: str | None = None
    """The RayService this object owns."""
    defaults: DefaultsStatus | None = None
    """The operator-level defaults its Ray cluster is built with, and whether they are the
    operator's current ones."""
