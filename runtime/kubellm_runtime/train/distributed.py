"""Training on Ray Train: one data-parallel rank per worker (NCCL on GPUs, gloo on CPUs).

The run's checkpoints live in its storage (``TrainArgs.checkpoint_uri``) under a fixed run
name, so Ray Train resumes from the latest one both when a worker dies (it restarts the
worker group, up to the retries allowed) and when the job starts again after a suspend or a
retry of the whole RayJob (it finds the run's earlier checkpoints there).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import ray.train
import torch
from ray.train.torch import TorchTrainer
from ray.util.queue import Queue

from kubellm_runtime.contract import TrainArgs
from kubellm_runtime.settings import RuntimeSettings
from kubellm_runtime.sources.local import local_path
from kubellm_runtime.train.errors import TrainError
from kubellm_runtime.train.loop import Outcome, train_worker
from kubellm_runtime.train.progress import LogSink, Reporter
from kubellm_runtime.train.sinks import sink_for
from kubellm_runtime.train.steps import check, publish

RUN_NAME = "run"
WORKER_RETRIES = 3
OUTCOMES = WORKER_RETRIES + 2  # one per attempt of rank 0, bounded
ENV_PREFIXES = ("KUBELLM_RUNTIME_", "KUBELLM_TRAIN_")
JOB_CONFIG = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # set by Ray's job manager for a submitted driver


def storage(args: TrainArgs, settings: RuntimeSettings) -> str:
    """Where Ray Train keeps the run: a mounted directory, or the bucket itself."""
    if urlsplit(args.checkpoint_uri).scheme in ("s3", "gs"):
        return args.checkpoint_uri
    path = local_path(args.checkpoint_uri, settings.pvc_root)
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def per_worker(config: dict[str, Any]) -> None:
    """What every rank runs (Ray Train calls it again after a restart). Inputs at fault are
    reported, not raised: Ray Train would retry them, and no retry can fix them."""
    args = TrainArgs.model_validate(config["args"])
    settings = RuntimeSettings.model_validate(config["settings"])
    if args.gpus_per_worker == 0:
        torch.set_num_threads(args.cpus_per_worker)  # Ray's default for a worker is one
    rank = ray.train.get_context().get_world_rank()
    interval = args.status.interval_s if args.status else 10.0
    reporter = Reporter(sink_for(args.status) if rank == 0 else LogSink(), interval)
    outcomes = config["outcomes"]
    try:
        checked = check(args, settings, output=rank == 0)
    except TrainError as exc:
        if rank == 0:
            reporter.write({"error": exc.as_status()})
            outcomes.put({"error": exc.as_status()})
        return
    work = Path(tempfile.mkdtemp(prefix="kubellm-train-"))
    outcome = train_worker(
        args,
        checked.model_path,
        data=checked.data,
        reporter=reporter,
        work_dir=work,
        use_gpu=args.gpus_per_worker > 0,
    )
    if rank == 0:
        publish(args, settings, checked.data, outcome, reporter)
        outcomes.put(
            {
                "steps": outcome.steps,
                "train_loss": outcome.train_loss,
                "eval_loss": outcome.eval_loss,
                "trained_tokens": outcome.trained_tokens,
                "train_seconds": outcome.train_seconds,
            }
        )


def passed_on() -> dict[str, str]:
    """The driver's kubellm settings, for every worker (in a pod they come from its spec;
    elsewhere, from whoever started the driver). Those a submitted job's own runtime
    environment sets already reach the workers, and Ray refuses them twice."""
    job = json.loads(os.environ.get(JOB_CONFIG, "{}"))
    given = ((job.get("runtime_env") or {}).get("env_vars") or {}).keys()
    return {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES) and k not in given}


def worker_resources(args: TrainArgs) -> dict[str, float]:
    """What one rank holds: its GPUs, and the CPUs its pod's resources.cpu gives it."""
    held: dict[str, float] = {"CPU": args.cpus_per_worker}
    if args.gpus_per_worker > 0:
        held["GPU"] = args.gpus_per_worker
    return held


def fit(args: TrainArgs, settings: RuntimeSettings) -> Outcome:
    """Train on ``args.workers`` ranks; a TrainError when the inputs are at fault."""
    use_gpu = args.gpus_per_worker > 0
    if not ray.is_initialized():
        ray.init(runtime_env={"env_vars": passed_on()})
    # Rank 0's outcome (or the inputs' fault) comes back through a queue: Ray Train's result
    # holds only the metrics of the latest checkpoint.
    outcomes = Queue(maxsize=OUTCOMES, actor_options={"num_cpus": 0})
    trainer = TorchTrainer(
        per_worker,
        train_loop_config={
            "args": args.model_dump(mode="json"),
            "settings": settings.model_dump(mode="json"),
            "outcomes": outcomes,
        },
        scaling_config=ray.train.ScalingConfig(
            num_workers=args.workers,
            use_gpu=use_gpu,
            resources_per_worker=worker_resources(args),
        ),
        run_config=ray.train.RunConfig(
            name=RUN_NAME,
            storage_path=storage(args, settings),
            failure_config=ray.train.FailureConfig(max_failures=WORKER_RETRIES),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
        ),
    )
    metrics: dict[str, Any] = {}
    try:
        trainer.fit()
        while not outcomes.empty():  # the last attempt's is the run's
            metrics = outcomes.get_nowait()
    finally:
        outcomes.shutdown()  # its actor goes whether the run ended well or not
    if not metrics:
        raise RuntimeError("the run ended without an outcome from rank 0")
    if "error" in metrics:
        raise TrainError(**metrics["error"])
    return Outcome(
        rank=0,
        adapter=None,
        train_loss=metrics.get("train_loss"),
        eval_loss=metrics.get("eval_loss"),
        steps=int(metrics.get("steps", 0)),
        trained_tokens=int(metrics.get("trained_tokens", 0)),
        train_seconds=float(metrics.get("train_seconds", 0.0)),
    )
