"""FineTuneJob (kubellm.io/v1alpha1): LoRA/QLoRA fine-tune a model as a KubeRay RayJob."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from kubellm_operator.api.base import ApiModel, Rule
from kubellm_operator.api.common import (
    Condition,
    DnsLabel,
    EnvVar,
    Placement,
    Quantity,
    RayVersion,
    SecretRef,
    ServedName,
)
from kubellm_operator.api.sources import SourceUri, pvc_claims

# A field name inside a dataset record (JSON object key).
FieldName = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")
]
# A module name PEFT matches against the model's layers (q_proj, v_proj, ...).
ModuleName = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")
]
DatasetFormat = Literal["text", "instruction", "chat"]


OUTPUT_FIELD = "spec.output.uri"
"""Where the adapter is written: the one source a job writes to."""


class BaseModelSpec(ApiModel):
    """The model to fine-tune."""

    uri: SourceUri
    """Weights: hf://org/name, s3://bucket/path, gs://bucket/path, pvc://claim/path, file:///path."""
    revision: str | None = None
    """Revision (branch, tag or commit) for hf:// sources."""
    trust_remote_code: bool = False
    """Allow model code from the model repository to run."""
    secret_ref: SecretRef | None = None
    """Secret with download credentials (HF_TOKEN, AWS_* keys), injected as environment."""


class DatasetSpec(ApiModel):
    """Training data: JSON Lines, one record per line."""

    uri: SourceUri
    """A .jsonl file (file://, pvc://, s3://, gs://) or a Hugging Face dataset (hf://org/name,
    only where a hub is reachable)."""
    format: DatasetFormat = "text"
    """text: a text field per record. instruction: a prompt and a response field (the loss is
    on the response only). chat: a list of {role, content} messages, rendered with the model's
    chat template (the loss is on the assistant turns only)."""
    text_field: FieldName = "text"
    """The record's text (format text)."""
    prompt_field: FieldName = "instruction"
    """The record's prompt (format instruction)."""
    response_field: FieldName = "response"
    """The record's answer (format instruction)."""
    messages_field: FieldName = "messages"
    """The record's messages (format chat)."""
    validation_split: float = Field(default=0.1, ge=0, le=0.5)
    """Fraction of the records held out for the eval loss (0: no evaluation)."""
    secret_ref: SecretRef | None = None
    """Secret with download credentials for the dataset, injected as environment."""


class Hyperparameters(ApiModel):
    """LoRA and optimizer settings (defaults as in the platforms kubellm grew from)."""

    lora_r: int = Field(default=16, ge=1, le=512)
    """LoRA rank."""
    lora_alpha: int = Field(default=32, ge=1, le=4096)
    """LoRA scaling (alpha / r multiplies the update)."""
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    """Dropout on the LoRA input."""
    target_modules: list[ModuleName] = Field(default_factory=list, max_length=64)
    """Modules to adapt (e.g. q_proj, v_proj); empty: PEFT's choice for the architecture."""
    learning_rate: float = Field(default=2e-4, gt=0, le=1)
    """Peak learning rate (AdamW, linear decay)."""
    num_epochs: int = Field(default=3, ge=1, le=1000)
    """Passes over the training records."""
    max_steps: int | None = Field(default=None, ge=1, le=10_000_000)
    """Stop after this many optimizer steps (overrides numEpochs)."""
    batch_size: int = Field(default=4, ge=1, le=4096)
    """Records per device per step."""
    gradient_accumulation_steps: int = Field(default=4, ge=1, le=4096)
    """Micro-batches summed into one optimizer step."""
    max_seq_length: int = Field(default=512, ge=8, le=1_048_576)
    """Tokens per record; longer records are cut."""
    warmup_ratio: float = Field(default=0.0, ge=0, lt=1)
    """Fraction of the steps the learning rate warms up over."""
    fp16: bool = True
    """Mixed precision in float16 on GPUs (CPU workers train in float32)."""
    bf16: bool = False
    """Mixed precision in bfloat16 on GPUs that have it (Ampere and newer)."""
    gradient_checkpointing: bool = True
    """Recompute activations in the backward pass: less memory, some more time."""
    seed: int = Field(default=42, ge=0, le=2**32 - 1)
    """Seed of the split, the shuffling and the LoRA initialization."""

    rules = (
        Rule(
            cel="!(self.fp16 && self.bf16)",
            message="set at most one of fp16 and bf16",
            check=lambda h: not (h.fp16 and h.bf16),
            field_path=".bf16",
        ),
    )


class TrainResources(ApiModel):
    """Workers of the training run (Ray Train: one data-parallel rank per worker)."""

    workers: int = Field(default=1, ge=1, le=256)
    """Training workers (pods); each trains on its share of every batch."""
    gpus_per_worker: int = Field(default=1, ge=0, le=16)
    """GPUs of one worker (0 trains on CPU: slow, for tests and tiny models)."""
    gpu_type: Annotated[str, StringConstraints(max_length=63)] | None = None
    """GPU product to require (nvidia.com/gpu.product label), e.g. NVIDIA-A100-SXM4-80GB."""
    cpu: Quantity = "8"
    """CPU per worker pod."""
    memory: Quantity = "64Gi"
    """Memory per worker pod."""


class OutputSpec(ApiModel):
    """Where the adapter goes."""

    uri: SourceUri
    """A directory (pvc://claim/path, s3://bucket/prefix, gs://bucket/prefix, file:///path);
    the adapter is written to <uri>/<job name>-<job uid prefix>, checkpoints beside it."""
    adapter_name: ServedName | None = None
    """Name the adapter is served under (default: the job's name)."""


# What a run is made of cannot change once it exists (a change would mix two runs in one
# adapter); suspend, deployTo, the deadline, retries and the TTL can.
IMMUTABLE = (
    "baseModel",
    "dataset",
    "method",
    "hyperparameters",
    "resources",
    "placement",
    "output",
    "image",
    "env",
    "rayVersion",
)


def _unchanged(field: str) -> str:
    return (
        f"(has(self.{field}) == has(oldSelf.{field}))"
        f" && (!has(self.{field}) || self.{field} == oldSelf.{field})"
    )


class FineTuneJobSpec(ApiModel):
    """Desired state of a FineTuneJob."""

    base_model: BaseModelSpec
    """The model to fine-tune."""
    dataset: DatasetSpec
    """The training data."""
    method: Literal["lora", "qlora"] = "lora"
    """lora: adapters on the model in its dtype. qlora: the base in 4 bits (GPU workers only)."""
    hyperparameters: Hyperparameters = Hyperparameters()
    """LoRA and optimizer settings."""
    resources: TrainResources = TrainResources()
    """Workers, GPUs, CPU and memory."""
    placement: Placement = Placement()
    """Node pool, selectors, tolerations, affinity and priority of the workers."""
    output: OutputSpec
    """Where the adapter is written."""
    deploy_to: DnsLabel | None = None
    """An LLMDeployment in this namespace that serves the adapter once training succeeds
    (verified served before Deployed is True); its base model must be this job's."""
    suspend: bool = False
    """true stops the run and frees its workers; false again resumes from the last checkpoint."""
    active_deadline_seconds: int | None = Field(default=None, ge=1)
    """The run fails with reason DeadlineExceeded after this long (suspended time excluded)."""
    backoff_limit: int = Field(default=2, ge=0, le=100)
    """Retries of a failed run (each resumes from the last checkpoint) before it is Failed."""
    ttl_seconds_after_finished: int = Field(default=3600, ge=0, le=31_536_000)
    """Seconds after the run ends until its Ray cluster and job are deleted (the adapter and
    the FineTuneJob stay)."""
    image: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = None
    """Runtime image (default: the operator's configured runtime image)."""
    env: list[EnvVar] = Field(default_factory=list)
    """Extra environment variables for the Ray containers."""
    ray_version: RayVersion | None = None
    """Ray version of the runtime image (default: the operator's)."""

    rules = (
        Rule(
            cel=(
                "!has(self.method) || self.method != 'qlora' || !has(self.resources)"
                " || !has(self.resources.gpusPerWorker) || self.resources.gpusPerWorker > 0"
            ),
            message="qlora needs GPU workers (resources.gpusPerWorker > 0)",
            check=lambda s: s.method != "qlora" or s.resources.gpus_per_worker > 0,
            field_path=".method",
        ),
        *(
            Rule(
                cel=_unchanged(field),
                message=f"{field} cannot change once the job exists (create a new job)",
                check=lambda _: True,  # a transition rule: only the API server sees oldSelf
                field_path=f".{field}",
            )
            for field in IMMUTABLE
        ),
        Rule(
            cel="!self.output.uri.startsWith('hf://')",
            message="the adapter is written to pvc://, s3://, gs:// or file://, not to a hub",
            check=lambda s: not s.output.uri.startswith("hf://"),
            field_path=".output.uri",
        ),
    )

    @property
    def claims(self) -> dict[str, tuple[str, ...]]:
        """The PersistentVolumeClaims it names (claim → the fields naming it); the one
        ``OUTPUT_FIELD`` names is written, the others read."""
        return pvc_claims(
            [
                ("spec.baseModel.uri", self.base_model.uri),
                ("spec.dataset.uri", self.dataset.uri),
                (OUTPUT_FIELD, self.output.uri),
            ]
        )


class TrainingError(ApiModel):
    """Why the job failed, as a program can match it."""

    reason: str
    """CamelCase reason: InvalidDataset, ModelNotLoadable, OutputNotWritable,
    DeadlineExceeded, BackoffLimitExceeded, AdapterMismatch, TrainingFailed, ..."""
    message: str
    """What went wrong, with the file, line and field where the data is at fault."""
    field: str | None = None
    """The spec field at fault, when one is (e.g. spec.dataset.uri)."""


class Progress(ApiModel):
    """Training progress, pushed by the trainer (at most one write per interval, and a last one)."""

    step: int = 0
    """Optimizer steps done."""
    total_steps: int | None = None
    """Optimizer steps of the whole run."""
    epoch: float | None = None
    """Epochs done (fractional)."""
    loss: float | None = None
    """Training loss of the latest logging window."""
    eval_loss: float | None = None
    """Loss on the held-out records at the latest evaluation."""
    percent: int | None = Field(default=None, ge=0, le=100)
    """step / totalSteps, in percent."""
    eta: str | None = None
    """Time left at the current pace (e.g. 3m20s)."""
    estimated_finish: str | None = None
    """When the run should end at the current pace (RFC 3339)."""
    tokens_per_second: float | None = None
    """Training tokens per second in the current attempt (all workers)."""
    trained_tokens: int | None = None
    """Tokens trained on so far (all workers, every epoch)."""
    updated_at: str | None = None
    """When the trainer wrote this (RFC 3339)."""
    resumed_from_step: int | None = None
    """The checkpoint's step this attempt continued from (absent on a fresh start): after a
    resume from suspend, a retry or a lost worker."""


JobPhase = Literal["Pending", "Running", "Suspended", "Succeeded", "Failed"]


class FineTuneJobStatus(ApiModel):
    """Observed state of a FineTuneJob."""

    phase: JobPhase | None = None
    """Pending (waiting for workers), Running, Suspended, Succeeded (the adapter is written) or
    Failed (see error)."""
    conditions: list[Condition] = Field(default_factory=list)
    """Running, Succeeded, Failed and (with deployTo) Deployed: True once the LLMDeployment
    was verified to serve the adapter."""
    observed_generation: int | None = None
    """Generation of the spec this status describes."""
    progress: Progress | None = None
    """Step, loss, percent and ETA of the run."""
    start_time: str | None = None
    """When training started (RFC 3339)."""
    completion_time: str | None = None
    """When the run ended (RFC 3339)."""
    adapter_uri: str | None = None
    """Where the finished adapter is (set only once it is completely written)."""
    adapter_name: str | None = None
    """The name the adapter is served under."""
    ray_job_name: str | None = None
    """The RayJob this object owns."""
    message: str = ""
    """What is happening now, for a human."""
    error: TrainingError | None = None
    """Why the run failed."""
    attempts: int | None = None
    """Runs started so far (1 + retries)."""
