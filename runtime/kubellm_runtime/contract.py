"""The operator/runtime contract: serve arguments carried in a RayService's serveConfigV2, and
train arguments carried in a RayJob's entrypoint.

The operator builds these, serializes them into the Ray Serve application's ``args``, and the
runtime validates them again when the application starts. Only pydantic and the standard
library may be imported here (import-linter enforces it), so both sides can depend on it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CONTRACT_VERSION: Literal["v1"] = "v1"

# The import path of the runtime's Ray Serve application builder, named in serveConfigV2.
SERVE_IMPORT_PATH = "kubellm_runtime.serve.app:build_app"

# Names and places both sides agree on: the operator writes them into the children it builds,
# the runtime reads them. They are defined here only.
SERVE_APP = "llm"
"""The one Ray Serve application of a RayService (serveConfigV2, KubeRay's status)."""
SERVE_DEPLOYMENT = "LLMServer"
"""The application's model deployment, configured by this name in serveConfigV2."""
PVC_ROOT = "/mnt/pvc"
"""Where a pod mounts the claims pvc:// sources name: pvc://claim/path is PVC_ROOT/claim/path."""
MODEL_CACHE_DIR = "/var/cache/kubellm/models"
"""Where s3:// and gs:// sources are downloaded in a pod."""
SETTINGS_ENV_PREFIX = "KUBELLM_RUNTIME_"
"""The runtime's settings are read from variables with this prefix."""
MODEL_CACHE_DIR_ENV = f"{SETTINGS_ENV_PREFIX}MODEL_CACHE_DIR"
API_KEY_ENV = "KUBELLM_API_KEY"
"""The key clients must send, from the LLMDeployment's apiKeySecretRef."""

Dtype = Literal["auto", "float16", "bfloat16", "float32"]


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelArgs(_Contract):
    """Which model the engine loads and how."""

    uri: str = Field(description="Model source: hf://, s3://, gs://, pvc://claim/path or file://")
    served_name: str = Field(description="Name clients pass as `model`")
    revision: str | None = None
    dtype: Dtype = "auto"
    max_model_len: int | None = Field(default=None, ge=1)
    quantization: str | None = None
    trust_remote_code: bool = False


class EngineArgs(_Contract):
    """Engine options; tensor/pipeline parallelism as the operator placed the replica."""

    backend: Literal["vllm", "transformers"] = "vllm"
    tensor_parallel_size: int = Field(default=1, ge=1)
    pipeline_parallel_size: int = Field(default=1, ge=1)
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    max_num_seqs: int | None = Field(default=None, ge=1)
    enable_prefix_caching: bool = True
    tool_call_parser: str | None = None
    """vLLM's tool-call parser for the model family (hermes, llama3_json, mistral, ...):
    tool_choice "auto" reads calls from the model's text with it."""
    extra_args: dict[str, str] = Field(default_factory=dict)


class AdapterArgs(_Contract):
    """A LoRA adapter the deployment's spec lists, selectable by `model` name."""

    name: str
    uri: str


class LoraArgs(_Contract):
    """LoRA support in the engine (a per-step cost) and its limits."""

    enabled: bool = False
    max_loras: int = Field(default=4, ge=1)
    max_lora_rank: int = Field(default=16, ge=1)


class ReplicaConfig(_Contract):
    """What a running replica applies live, without a restart: Ray Serve's ``user_config``
    of the model deployment (a change reaches every replica through ``reconfigure``, and a
    replica that starts later, or again, gets the current one)."""

    adapters: tuple[AdapterArgs, ...] = ()
    """The adapters to serve: every replica loads these and unloads the others."""
    adapter_sources: tuple[str, ...] = ()
    """URI prefixes a client may name an adapter from (e.g. /chat's adapter_path)."""


class LimitsArgs(_Contract):
    """Backpressure of one replica, sized by the operator in step with Ray Serve's limits."""

    max_inflight: int = Field(ge=1)
    """Requests the replica admits at once; more get 429."""
    retry_after_s: int = Field(default=1, ge=1)
    """Retry-After sent with 429."""
    request_timeout_s: float | None = Field(default=None, gt=0)
    """A generation running longer is aborted (None: the runtime's own setting). Ray Serve's
    graceful shutdown is longer, so a stopping replica never cuts a stream."""


class ServeArgs(_Contract):
    """Everything the runtime needs to serve one LLMDeployment replica."""

    contract_version: Literal["v1"] = CONTRACT_VERSION
    model: ModelArgs
    engine: EngineArgs = EngineArgs()
    lora: LoraArgs = LoraArgs()
    limits: LimitsArgs | None = None
    """None: the runtime's own settings (local mode)."""
    api_key_env: str | None = Field(
        default=None, description="Environment variable holding the API key, if auth is on"
    )


# The training entrypoint a RayJob runs (its arguments: --args-json TrainArgs).
TRAIN_MODULE = "kubellm_runtime.train"


class BaseModelArgs(_Contract):
    """The model a run fine-tunes."""

    uri: str
    revision: str | None = None
    trust_remote_code: bool = False


class DatasetArgs(_Contract):
    """Training records and how to read them."""

    uri: str
    format: Literal["text", "instruction", "chat"] = "text"
    text_field: str = "text"
    prompt_field: str = "instruction"
    response_field: str = "response"
    messages_field: str = "messages"
    validation_split: float = Field(default=0.1, ge=0, le=0.5)


class HyperparameterArgs(_Contract):
    """LoRA and optimizer settings, as the FineTuneJob gives them."""

    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: tuple[str, ...] = ()
    learning_rate: float = Field(default=2e-4, gt=0)
    num_epochs: int = Field(default=3, ge=1)
    max_steps: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=4, ge=1)
    gradient_accumulation_steps: int = Field(default=4, ge=1)
    max_seq_length: int = Field(default=512, ge=8)
    warmup_ratio: float = Field(default=0.0, ge=0, lt=1)
    fp16: bool = True
    bf16: bool = False
    gradient_checkpointing: bool = True
    seed: int = Field(default=42, ge=0)


class StatusTarget(_Contract):
    """The FineTuneJob whose status the trainer writes progress to (through the Kubernetes
    API, with the identity of the pods it runs in: it may patch this object's status only)."""

    namespace: str
    name: str
    uid: str
    """The object the run belongs to: a write to a re-created namesake is refused."""
    interval_s: float = Field(default=10.0, ge=0)
    """At most one progress write in this time (the final one is always written)."""


class TrainArgs(_Contract):
    """Everything the trainer needs to run one FineTuneJob."""

    contract_version: Literal["v1"] = CONTRACT_VERSION
    base_model: BaseModelArgs
    dataset: DatasetArgs
    method: Literal["lora", "qlora"] = "lora"
    hyperparameters: HyperparameterArgs = HyperparameterArgs()
    workers: int = Field(default=1, ge=1)
    gpus_per_worker: int = Field(default=0, ge=0)
    cpus_per_worker: int = Field(default=1, ge=1)
    """Ray CPUs each training worker holds, and its torch threads on CPU."""
    output_uri: str
    """The adapter's final location; written whole or not at all."""
    checkpoint_uri: str
    """Where checkpoints are kept, so a retry or a resume after suspend continues."""
    adapter_name: str
    status: StatusTarget | None = None
    """None: progress goes to the log only (local runs, benchmarks)."""
