"""What a run's arguments mean for PEFT and the transformers Trainer (pure: no model loaded).

QLoRA's base model is loaded in 4 bits (NF4, double quantization) and needs GPU workers;
its configuration is built and checked here, on any machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, TaskType
from transformers import BitsAndBytesConfig

from kubellm_runtime.contract import HyperparameterArgs, TrainArgs


@dataclass(frozen=True)
class Plan:
    """How many optimizer steps the run takes, and when it checkpoints and evaluates."""

    steps_per_epoch: int
    total_steps: int
    save_steps: int
    epochs: float


def plan(args: TrainArgs, train_records: int, checkpoints: int = 10) -> Plan:
    """Steps as the Trainer counts them: each worker takes batchSize records per micro-batch,
    gradientAccumulationSteps micro-batches make a step (a partial last one counts)."""
    h = args.hyperparameters
    batches = math.ceil(train_records / (h.batch_size * args.workers))
    per_epoch = max(1, math.ceil(batches / h.gradient_accumulation_steps))
    total = h.max_steps or per_epoch * h.num_epochs
    return Plan(
        steps_per_epoch=per_epoch,
        total_steps=total,
        save_steps=max(1, math.ceil(total / checkpoints)),
        epochs=total / per_epoch,
    )


def lora_config(h: HyperparameterArgs) -> LoraConfig:
    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=h.lora_r,
        lora_alpha=h.lora_alpha,
        lora_dropout=h.lora_dropout,
        target_modules=list(h.target_modules) or None,  # None: PEFT's for the architecture
        bias="none",
    )


def compute_dtype(h: HyperparameterArgs, use_gpu: bool) -> torch.dtype:
    if not use_gpu:
        return torch.float32  # CPUs train in full precision
    return torch.bfloat16 if h.bf16 else torch.float16 if h.fp16 else torch.float32


def quantization_config(args: TrainArgs) -> BitsAndBytesConfig | None:
    """QLoRA's 4-bit base; None for plain LoRA."""
    if args.method != "qlora":
        return None
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype(args.hyperparameters, use_gpu=True),
    )


def model_options(args: TrainArgs, use_gpu: bool) -> dict[str, Any]:
    """Keyword arguments of ``from_pretrained`` for the base model."""
    options: dict[str, Any] = {
        "revision": args.base_model.revision,
        "trust_remote_code": args.base_model.trust_remote_code,
    }
    quantized = quantization_config(args)
    if quantized is not None:
        options["quantization_config"] = quantized
        options["dtype"] = compute_dtype(args.hyperparameters, use_gpu)
    elif use_gpu and (args.hyperparameters.fp16 or args.hyperparameters.bf16):
        # Mixed precision keeps fp32 master weights of the trained (LoRA) parameters; the
        # frozen base can stay in the half dtype.
        options["dtype"] = compute_dtype(args.hyperparameters, use_gpu)
    return {k: v for k, v in options.items() if v is not None}


def training_arguments(
    args: TrainArgs, run: Plan, work_dir: Path, use_gpu: bool, evaluate: bool
) -> dict[str, Any]:
    """Keyword arguments of ``transformers.TrainingArguments`` for the run."""
    h = args.hyperparameters
    return {
        "output_dir": str(work_dir),
        "per_device_train_batch_size": h.batch_size,
        "per_device_eval_batch_size": h.batch_size,
        "gradient_accumulation_steps": h.gradient_accumulation_steps,
        "learning_rate": h.learning_rate,
        "lr_scheduler_type": "linear",
        "warmup_steps": math.ceil(h.warmup_ratio * run.total_steps),
        "num_train_epochs": h.num_epochs,
        "max_steps": run.total_steps,
        "fp16": use_gpu and h.fp16,
        "bf16": use_gpu and h.bf16,
        "gradient_checkpointing": h.gradient_checkpointing,
        "gradient_checkpointing_kwargs": {"use_reentrant": False},
        "seed": h.seed,
        "data_seed": h.seed,
        "logging_steps": 1,
        "logging_strategy": "steps",
        "save_strategy": "steps",
        "save_steps": run.save_steps,
        "save_total_limit": 2,
        "eval_strategy": "steps" if evaluate else "no",
        "eval_steps": run.steps_per_epoch if evaluate else None,
        "report_to": [],
        "disable_tqdm": True,
        "remove_unused_columns": False,
        "use_cpu": not use_gpu,
        "dataloader_num_workers": 0,
        "ddp_find_unused_parameters": False,
    }
