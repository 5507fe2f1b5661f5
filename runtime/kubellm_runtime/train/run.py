"""One FineTuneJob run, as the RayJob's entrypoint drives it.

Everything a user can get wrong is checked before training starts: the base model loads,
every dataset record is well-formed, the output can be written. Those failures are final
(retrying cannot fix them) and say what to fix. Then the workers train (Ray Train: one rank
per worker, restarted from the last checkpoint when one dies), rank 0 publishes the adapter
whole, and the status gets the adapter's location last: a job is never Succeeded without one.
"""

from __future__ import annotations

import structlog

from kubellm_runtime.contract import TrainArgs
from kubellm_runtime.settings import RuntimeSettings
from kubellm_runtime.sources.local import local_path
from kubellm_runtime.train.errors import TrainError
from kubellm_runtime.train.loop import Outcome, train_worker
from kubellm_runtime.train.output import Output
from kubellm_runtime.train.progress import Reporter
from kubellm_runtime.train.steps import check, publish

log = structlog.get_logger(__name__)


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
