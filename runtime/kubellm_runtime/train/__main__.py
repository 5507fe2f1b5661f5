"""``python -m kubellm_runtime.train --args-json '<TrainArgs>'``: the RayJob's entrypoint.

Exit status: 0 when the adapter is published; 2 when the inputs are at fault (the status
says which and why; a retry cannot help); 1 when training itself failed (worth a retry).
"""

from __future__ import annotations

import argparse
import sys

import structlog

from kubellm_runtime.contract import TrainArgs
from kubellm_runtime.logs import configure
from kubellm_runtime.settings import RuntimeSettings
from kubellm_runtime.train.errors import TrainError
from kubellm_runtime.train.progress import Reporter
from kubellm_runtime.train.run import run
from kubellm_runtime.train.sinks import sink_for

log = structlog.get_logger(__name__)
EXIT_INPUTS = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubellm_runtime.train")
    parser.add_argument("--args-json", required=True, help="the TrainArgs of the run (JSON)")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="train in this process, without Ray Train (one CPU worker: tests, benchmarks)",
    )
    options = parser.parse_args(argv)
    settings = RuntimeSettings()
    configure(settings.log_format, settings.log_level)
    args = TrainArgs.model_validate_json(options.args_json)
    reporter = Reporter(sink_for(args.status), args.status.interval_s if args.status else 10.0)
    try:
        run(args, settings, reporter, ray=not options.in_process)
    except TrainError as exc:
        log.warning("training refused", reason=exc.reason, message=exc.message, field=exc.field)
        return EXIT_INPUTS
    except Exception as exc:
        message = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:500]
        reporter.write({"error": {"reason": "TrainingFailed", "message": message}})
        log.exception("training failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
