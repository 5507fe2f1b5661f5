"""One training worker: PEFT LoRA on the transformers Trainer, resumable, reporting progress.

Under Ray Train (``ray.train.get_context()`` answers) the worker is one data-parallel rank:
checkpoints are reported to Ray Train, which keeps them in the run's storage and hands the
latest back when a worker group restarts (a worker died, the job was suspended and resumed).
Run alone (tests, benchmarks) it checkpoints into its work directory and resumes from there.
Rank 0 writes progress and publishes the adapter; every rank trains.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import torch
from peft import get_peft_model, prepare_model_for_kbit_training
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.trainer_callback import PrinterCallback
from transformers.trainer_utils import get_last_checkpoint

from kubellm_runtime.contract import TrainArgs
from kubellm_runtime.train import config
from kubellm_runtime.train.progress import Reporter, Snapshot
from kubellm_runtime.train.records import IGNORE, Example, Render, examples

log = structlog.get_logger(__name__)
INSTRUCTION = "### Instruction:\n{prompt}\n\n### Response:\n"


@dataclass(frozen=True)
class Data:
    """The records of a run, tokenized and split (the same on every worker: seeded)."""

    train: list[Example]
    validation: list[Example]
    sha256: str

    @property
    def tokens_per_epoch(self) -> int:
        return sum(len(e.input_ids) for e in self.train)


def renderer(tokenizer: Any, fmt: str) -> Render:
    """The model's chat template; a model without one trains instructions on a plain layout
    (chat records need a template)."""
    if getattr(tokenizer, "chat_template", None):

        def render(messages: Sequence[dict[str, str]], opening: bool) -> str:
            return str(
                tokenizer.apply_chat_template(
                    list(messages), tokenize=False, add_generation_prompt=opening
                )
            )

        return render
    if fmt == "chat":
        from kubellm_runtime.train.errors import TrainError  # noqa: PLC0415

        raise TrainError(
            "InvalidDataset",
            "format chat needs a model with a chat template; this one has none "
            "(use format instruction or text)",
            field="spec.dataset.format",
        )

    def plain(messages: Sequence[dict[str, str]], opening: bool) -> str:
        return INSTRUCTION.format(prompt=messages[-1]["content"]) if opening else ""

    return plain


def load_data(args: TrainArgs, tokenizer: Any, dataset: Path) -> Data:
    records, digest = examples(
        dataset,
        args.dataset.uri,
        args.dataset,
        tokenizer=tokenizer,
        render=renderer(tokenizer, args.dataset.format),
        max_len=args.hyperparameters.max_seq_length,
    )
    order = list(range(len(records)))
    random.Random(args.hyperparameters.seed).shuffle(order)  # noqa: S311 - a seeded split
    held = int(len(records) * args.dataset.validation_split)
    if args.dataset.validation_split > 0 and len(records) > 1:
        held = max(1, held)
    validation = [records[i] for i in order[:held]]
    return Data([records[i] for i in order[held:]], validation, digest)


class Records(torch.utils.data.Dataset[dict[str, list[int]]]):
    def __init__(self, items: list[Example]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        item = self.items[index]
        return {"input_ids": list(item.input_ids), "labels": list(item.labels)}


def collator(pad_id: int) -> Callable[[list[dict[str, list[int]]]], dict[str, torch.Tensor]]:
    def collate(batch: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(b["input_ids"]) for b in batch)
        ids = [b["input_ids"] + [pad_id] * (width - len(b["input_ids"])) for b in batch]
        labels = [b["labels"] + [IGNORE] * (width - len(b["labels"])) for b in batch]
        mask = [[1] * len(b["input_ids"]) + [0] * (width - len(b["input_ids"])) for b in batch]
        return {
            "input_ids": torch.tensor(ids),
            "labels": torch.tensor(labels),
            "attention_mask": torch.tensor(mask),
        }

    return collate


class ProgressCallback(TrainerCallback):
    """Rank 0's progress writes: paced, plus the first step, each evaluation and the end."""

    def __init__(self, reporter: Reporter, tokens_per_epoch: int) -> None:
        self.reporter = reporter
        self.tokens_per_epoch = tokens_per_epoch
        self.loss: float | None = None
        self.eval_loss: float | None = None
        self._started = time.monotonic()
        self._first_step: int | None = None
        self._first_epoch = 0.0
        self._resumed_from = 0

    def snapshot(self, state: Any) -> Snapshot:
        epoch = float(state.epoch or 0.0)
        if self._first_step is None:
            self._first_step, self._first_epoch = state.global_step, epoch
        return Snapshot(
            step=state.global_step,
            total_steps=state.max_steps,
            epoch=epoch,
            loss=self.loss,
            eval_loss=self.eval_loss,
            trained_tokens=round(epoch * self.tokens_per_epoch),
            tokens_this_attempt=round((epoch - self._first_epoch) * self.tokens_per_epoch),
            elapsed_s=time.monotonic() - self._started,
            steps_this_attempt=state.global_step - self._first_step,
            resumed_from_step=self._resumed_from,
        )

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._started = time.monotonic()
        self._first_step = None
        self._resumed_from = state.global_step  # the Trainer restored a checkpoint's state
        self.snapshot(state)

    def on_log(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        logs = kwargs.get("logs") or {}
        if "loss" in logs:
            self.loss = float(logs["loss"])

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.reporter.report(self.snapshot(state), force=state.global_step == 1)

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        metrics = kwargs.get("metrics") or {}
        if "eval_loss" in metrics:
            self.eval_loss = float(metrics["eval_loss"])
            self.reporter.report(self.snapshot(state), force=True)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.reporter.report(self.snapshot(state), force=True)


class RayCheckpoints(TrainerCallback):
    """Each checkpoint the Trainer saves goes to Ray Train (rank 0 uploads it; every rank
    reports, as Ray Train expects)."""

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        import ray.train  # noqa: PLC0415

        metrics = {"step": state.global_step, "epoch": float(state.epoch or 0.0)}
        latest = get_last_checkpoint(args.output_dir) if state.is_world_process_zero else None
        if latest is None:
            ray.train.report(metrics)
            return
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(latest))


@dataclass(frozen=True)
class Outcome:
    """What a finished worker knows (rank 0's is the run's)."""

    rank: int
    adapter: Path | None
    train_loss: float | None
    eval_loss: float | None
    steps: int
    trained_tokens: int
    train_seconds: float = 0.0
    """The training loop's wall time in this attempt (model loading excluded)."""


def train_worker(
    args: TrainArgs,
    model_path: Path,
    *,
    data: Data,
    reporter: Reporter,
    work_dir: Path,
    use_gpu: bool,
) -> Outcome:
    """Train one rank to the end (resuming where a checkpoint is); rank 0 saves the adapter
    into ``work_dir/adapter``."""
    context = _ray_context()
    rank = context.get_world_rank() if context else 0
    run = config.plan(args, len(data.train))
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    base: Any = AutoModelForCausalLM.from_pretrained(
        model_path, **config.model_options(args, use_gpu)
    )
    if args.method == "qlora":
        base = prepare_model_for_kbit_training(  # type: ignore[no-untyped-call]
            base, use_gradient_checkpointing=args.hyperparameters.gradient_checkpointing
        )
    torch.manual_seed(args.hyperparameters.seed)
    model = get_peft_model(base, config.lora_config(args.hyperparameters))
    evaluate = bool(data.validation)
    progress = ProgressCallback(reporter, data.tokens_per_epoch)
    callbacks: list[TrainerCallback] = [progress] if rank == 0 else []
    if context:
        callbacks.append(RayCheckpoints())
    trainer = Trainer(
        model=model,
        args=TrainingArguments(**config.training_arguments(args, run, work_dir, use_gpu, evaluate)),
        train_dataset=Records(data.train),
        eval_dataset=Records(data.validation) if evaluate else None,
        data_collator=collator(_pad_id(tokenizer)),
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # progress goes to the status and the log
    with _resume_point(work_dir, context) as resume:
        log.info("training", rank=rank, total_steps=run.total_steps, resume=str(resume or ""))
        result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    if evaluate and not _evaluated_at(trainer.state.log_history, trainer.state.global_step):
        # The final adapter's loss. Every rank decides alike (from the log every rank
        # keeps): evaluation is a collective.
        progress.eval_loss = float(trainer.evaluate()["eval_loss"])
    adapter = None
    if rank == 0:
        adapter = work_dir / "adapter"
        model.save_pretrained(str(adapter))
    return Outcome(
        rank=rank,
        adapter=adapter,
        train_loss=float(result.training_loss),
        eval_loss=progress.eval_loss,
        steps=trainer.state.global_step,
        trained_tokens=round(float(trainer.state.epoch or 0.0) * data.tokens_per_epoch),
        train_seconds=float(result.metrics.get("train_runtime", 0.0)),
    )


def _evaluated_at(history: list[dict[str, Any]], step: int) -> bool:
    return any("eval_loss" in entry and entry.get("step") == step for entry in history)


def _pad_id(tokenizer: Any) -> int:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return int(pad or 0)


def _ray_context() -> Any:
    try:
        import ray.train  # noqa: PLC0415

        return ray.train.get_context()
    except (ImportError, RuntimeError, AttributeError):
        return None


@contextmanager
def _resume_point(work_dir: Path, context: Any) -> Iterator[Path | None]:
    """The checkpoint to resume from: Ray Train's latest (materialized for the Trainer), or
    the work directory's last one when run alone."""
    if context is None:
        last = get_last_checkpoint(str(work_dir)) if work_dir.is_dir() else None
        yield Path(last) if last else None
        return
    import ray.train  # noqa: PLC0415

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="kubellm-resume-") as folder:
        yield Path(checkpoint.to_directory(folder))
