"""Training on Ray Train: one data-parallel rank per worker (NCCL on GPUs, gloo on CPUs).

The run's checkpoints live in its storage (``TrainArgs.checkpoint_uri``) under a fixed run
name, so Ray Train resumes from the latest one both when a worker dies (it restarts the
worker group, up to the retries allowed) and when the job starts again after a suspend or a
retry of the whole RayJob (it finds the run's earlier checkpoints there).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import ray.train
from ray.train.torch import TorchTrainer

from kubellm_runtime.contract import TrainArgs
from kubellm_runtime.settings import RuntimeSettings
from kubellm_runtime.sources import resolve
from kubellm_runtime.sources.files import resolve_file
from kubellm_runtime.sources.local import local_path
from kubellm_runtime.train.loop import Outcome, load_data, train_worker
from kubellm_runtime.train.progress import Reporter
from kubellm_runtime.train.sinks import sink_for

RUN_NAME = "run"
WORKER_RETRIES = 3


def storage(args: TrainArgs, settings: RuntimeSettings) -> str:
    """Where Ray Train keeps the run: a mounted directory, or the bucket itself."""
    if urlsplit(args.checkpoint_uri).scheme in ("s3", "gs"):
        return args.checkpoint_uri
    path = local_path(args.checkpoint_uri, settings.pvc_root)
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def per_worker(config: dict[str, Any]) -> None:
    """What every rank runs (Ray Train calls it again after a restart)."""
    from transformers import AutoTokenizer  # noqa: PLC0415

    from kubellm_runtime.train.run import publish  # noqa: PLC0415 - avoids an import cycle

    args = TrainArgs.model_validate(config["args"])
    settings = RuntimeSettings.model_validate(config["settings"])
    rank = ray.train.get_context().get_world_rank()
    model_path = resolve(args.base_model.uri, args.base_model.revision, settings)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    data = load_data(args, tokenizer, resolve_file(args.dataset.uri, settings))
    reporter = Reporter(sink_for(args.status), args.status.interval_s if args.status else 10.0)
    work = Path(tempfile.mkdtemp(prefix="kubellm-train-"))
    outcome = train_worker(
        args,
        model_path,
        data=data,
        reporter=reporter,
        work_dir=work,
        use_gpu=args.gpus_per_worker > 0,
    )
    if rank == 0:
        publish(args, settings, data, outcome, reporter)
    ray.train.report(
        {
            "steps": outcome.steps,
            "train_loss": outcome.train_loss,
            "eval_loss": outcome.eval_loss,
            "trained_tokens": outcome.trained_tokens,
        }
    )


def fit(args: TrainArgs, settings: RuntimeSettings) -> Outcome:
    use_gpu = args.gpus_per_worker > 0
    trainer = TorchTrainer(
        per_worker,
        train_loop_config={
            "args": args.model_dump(mode="json"),
            "settings": settings.model_dump(mode="json"),
        },
        scaling_config=ray.train.ScalingConfig(
            num_workers=args.workers,
            use_gpu=use_gpu,
            resources_per_worker={"GPU": args.gpus_per_worker} if use_gpu else {"CPU": 1},
        ),
        run_config=ray.train.RunConfig(
            name=RUN_NAME,
            storage_path=storage(args, settings),
            failure_config=ray.train.FailureConfig(max_failures=WORKER_RETRIES),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
        ),
    )
    result = trainer.fit()
    metrics = result.metrics or {}
    return Outcome(
        rank=0,
        adapter=None,
        train_loss=metrics.get("train_loss"),
        eval_loss=metrics.get("eval_loss"),
        steps=int(metrics.get("steps", 0)),
        trained_tokens=int(metrics.get("trained_tokens", 0)),
    )
