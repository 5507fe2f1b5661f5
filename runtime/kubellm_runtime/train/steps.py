"""The steps of a run that the driver (one process) and every Ray Train rank take alike: check
the inputs before training, publish the adapter after it.

Everything a user can get wrong is checked before training starts: the base model loads,
every dataset record is well-formed, the output can be written. Those failures are final
(retrying cannot fix them) and say what to fix.
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
from kubellm_runtime.train.errors import TrainError
from kubellm_runtime.train.loop import Data, Outcome, load_data
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
