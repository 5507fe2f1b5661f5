"""What a run's arguments mean for PEFT and the Trainer: steps, LoRA, QLoRA's 4-bit base
(built and checked here; run only on GPUs), precision on CPU and GPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from kubellm_runtime.contract import TrainArgs
from kubellm_runtime.train import config


def train_args(**changes: Any) -> TrainArgs:
    base: dict[str, Any] = {
        "base_model": {"uri": "pvc://models/smollm2"},
        "dataset": {"uri": "pvc://data/train.jsonl"},
        "output_uri": "pvc://out/adapter",
        "checkpoint_uri": "pvc://out/.checkpoints/adapter",
        "adapter_name": "adapter",
    }
    return TrainArgs.model_validate({**base, **changes})


@pytest.mark.parametrize(
    ("records", "workers", "hyper", "per_epoch", "total"),
    [
        (100, 1, {}, 7, 21),  # 25 batches of 4, 4 to a step (the last one partial): 7 a epoch
        (100, 2, {}, 4, 12),  # two workers share each batch
        (3, 1, {"num_epochs": 1}, 1, 1),
        (100, 1, {"max_steps": 5}, 7, 5),
    ],
)
def test_steps_are_counted_as_the_trainer_counts_them(
    records: int, workers: int, hyper: dict[str, Any], per_epoch: int, total: int
) -> None:
    run = config.plan(train_args(workers=workers, hyperparameters=hyper), records)
    assert (run.steps_per_epoch, run.total_steps) == (per_epoch, total)
    assert 1 <= run.save_steps <= total


def test_lora_defaults_are_the_familiar_ones() -> None:
    lora = config.lora_config(train_args().hyperparameters)
    assert (lora.r, lora.lora_alpha, lora.lora_dropout) == (16, 32, 0.05)
    assert lora.target_modules is None  # PEFT's choice for the architecture
    named = config.lora_config(
        train_args(hyperparameters={"target_modules": ["q_proj", "v_proj"]}).hyperparameters
    )
    assert set(named.target_modules or ()) == {"q_proj", "v_proj"}


def test_qlora_loads_the_base_in_4_bit_nf4_with_double_quantization() -> None:
    options = config.model_options(
        train_args(method="qlora", hyperparameters={"bf16": True, "fp16": False}), use_gpu=True
    )
    quantized = options["quantization_config"]
    assert quantized.load_in_4bit
    assert quantized.bnb_4bit_quant_type == "nf4"
    assert quantized.bnb_4bit_use_double_quant
    assert quantized.bnb_4bit_compute_dtype == torch.bfloat16
    assert options["dtype"] == torch.bfloat16
    assert "quantization_config" not in config.model_options(train_args(), use_gpu=True)


def test_cpu_workers_train_in_full_precision_and_gpus_in_mixed() -> None:
    args = train_args()
    run = config.plan(args, 100)
    cpu = config.training_arguments(args, run, Path("/w"), use_gpu=False, evaluate=True)
    gpu = config.training_arguments(args, run, Path("/w"), use_gpu=True, evaluate=False)
    assert (cpu["fp16"], cpu["bf16"], cpu["use_cpu"]) == (False, False, True)
    assert (gpu["fp16"], gpu["bf16"], gpu["use_cpu"]) == (True, False, False)
    assert cpu["eval_strategy"] == "steps"
    assert cpu["eval_steps"] == run.steps_per_epoch  # once an epoch
    assert gpu["eval_strategy"] == "no"
    assert config.model_options(args, use_gpu=False) == {"trust_remote_code": False}
    assert config.model_options(args, use_gpu=True)["dtype"] == torch.float16
