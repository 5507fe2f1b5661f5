"""One FineTuneJob run, as the RayJob's entrypoint drives it.

Everything a user can get wrong is checked before training starts: the base model loads,
every dataset record is well-formed, the output can be written. Those failures are final
(retrying cannot fix them) and say what to fix. Then the workers train (Ray Train: one rank
per worker, restarted from the last checkpoint when one dies), rank 0 publishes the adapter
whole, and the status gets the adapter's location last: a job is never Succeeded without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from transformers import AutoConfig, AutoTokenizer

from kubellm_runtime.contract import TrainArgs
from kubellm_runtime.settings import RuntimeSettings
from kubellm_runtime.sources import SourceError, resolve
from kubellm_runtime.sources.files import resolve_file
from kubellm_runtime.sources.local import local_path
from kubellm_runtime.train.errors import TrainError
from kubellm_runtime.train.loop import Data, Outcome, load_data, train_worker
from kubellm_runtime.train.output import Output
from kubellm_runtime.train.progress import Reporter

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Checked:
    """What the checks before training found: the model's local path and the data."""

    model_path: Path
    data: Data


def check(args: TrainArgs, settings: RuntimeSettings, *, output: bool = True) -> Checked:
    """The run's inputs, or the TrainError that says which one is at fault and why
    (``output``: whether this process writes the adapter, and so checks where it goes)."""
    try:
        model_path = resolve(args.base_model.uri, args.base_model.revision, settings)
    except SourceError as exc:
        raise TrainError("ModelNotLoadable", str(exc), field="spec.baseModel.uri") from None
    try:
        AutoConfig.from_pretrained(model_path, trust_remote_code=args.base_model.trust_remote_code)
        tokenizer = AutoTokenizer.from_pretrained(
            model_path, trust_remote_code=args.base_model.trust_remote_code
        )
    except (OSError, ValueError, KeyError) as exc:
        raise TrainError(
            "ModelNotLoadable",
            f"{args.base_model.uri}: not a model transformers can load ({_first_line(exc)})",
            field="spec.baseModel.uri",
        ) from None
    try:
        dataset_path = resolve_file(args.dataset.uri, settings)
    except SourceError as exc:
        raise TrainError("InvalidDataset", str(exc), field="spec.dataset.uri") from None
    data = load_data(args, tokenizer, dataset_path)
    if output:
        Output(args.output_uri, settings).check_writable()
    return Checked(model_path, data)


def metadata(args: TrainArgs, data: Data, outcome: Outcome) -> dict[str, Any]:
    """What the adapter's ``kubellm-adapter.json`` records about how it was made."""
    return {
        "adapterName": args.adapter_name,
        "baseModel": {"uri": args.base_model.uri, "revision": args.base_model.revision},
        "method": args.method,
        "hyperparameters": args.hyperparameters.model_dump(mode="json"),
        "dataset": {
            "uri": args.dataset.uri,
            "format": args.dataset.format,
            "sha256": data.sha256,
            "trainRecords": len(data.train),
            "validationRecords": len(data.validation),
        },
        "workers": args.workers,
        "steps": outcome.steps,
        "trainedTokens": outcome.trained_tokens,
        "trainLoss": outcome.train_loss,
        "evalLoss": outcome.eval_loss,
        "finishedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def run(args: TrainArgs, settings: RuntimeSettings, reporter: Reporter, *, ray: bool) -> Outcome:
    """Check, train, publish; a TrainError is on the status before it is raised. On Ray
    the workers check the inputs (where the model, data and output are mounted), not the
    driver."""
    if (done := Output(args.output_uri, settings).published()) is not None:
        log.info("adapter already published; nothing to train", uri=args.output_uri)
        reporter.write({"adapterUri": args.output_uri})
        return Outcome(0, None, done.get("trainLoss"), done.get("evalLoss"), done["steps"], 0)
    if ray:
        from kubellm_runtime.train.distributed import fit  # noqa: PLC0415 - Ray only here

        return fit(args, settings)
    try:
        checked = check(args, settings)
    except TrainError as exc:
        reporter.write({"error": exc.as_status()})
        raise
    work = local_path(args.checkpoint_uri, settings.pvc_root)
    work.mkdir(parents=True, exist_ok=True)
    outcome = train_worker(
        args, checked.model_path, data=checked.data, reporter=reporter, work_dir=work, use_gpu=False
    )
    publish(args, settings, checked.data, outcome, reporter)
    return outcome


def publish(
    args: TrainArgs, settings: RuntimeSettings, data: Data, outcome: Outcome, reporter: Reporter
) -> None:
    """Rank 0, after training: the adapter whole at the output, then its URI on the status."""
    if outcome.adapter is None:
        raise RuntimeError("rank 0 finished without an adapter")
    Output(args.output_uri, settings).publish(outcome.adapter, metadata(args, data, outcome))
    reporter.write({"adapterUri": args.output_uri})
    log.info("adapter published", uri=args.output_uri, steps=outcome.steps)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
