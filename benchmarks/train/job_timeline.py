"""A FineTuneJob's timeline as the API server recorded it: apply -> Running -> Succeeded ->
Deployed, in seconds, from the object itself (creationTimestamp, the conditions'
lastTransitionTime, completionTime).

Run by hand against a cluster where a job finished, e.g. after `make demo` (its job `mascot`):

    .venv/bin/kubellm-dev exec --name demo -- \\
        .venv/bin/python benchmarks/train/job_timeline.py mascot --namespace default

The timestamps have one-second resolution (RFC 3339 as Kubernetes writes them), so each figure
is good to about a second; that is enough against the target (Succeeded -> Deployed < 10 s).
"""

from __future__ import annotations

import argparse
import json
import subprocess
from datetime import datetime
from typing import Any


def moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def timeline(job: dict[str, Any]) -> dict[str, float | None]:
    status = job.get("status") or {}
    conditions = {c["type"]: c for c in status.get("conditions") or []}
    created = moment(job["metadata"]["creationTimestamp"])
    started = moment(status.get("startTime"))
    done = moment(status.get("completionTime"))
    deployed = conditions.get("Deployed", {})
    served = (
        moment(deployed.get("lastTransitionTime")) if deployed.get("status") == "True" else None
    )

    def between(a: datetime | None, b: datetime | None) -> float | None:
        return (b - a).total_seconds() if a and b else None

    return {
        "apply_to_started_s": between(created, started),
        "apply_to_succeeded_s": between(created, done)
        if status.get("phase") == "Succeeded"
        else None,
        "succeeded_to_deployed_s": between(done, served),
        "steps": (status.get("progress") or {}).get("step"),
        "tokens_per_second": (status.get("progress") or {}).get("tokensPerSecond"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--kubectl", default="kubectl")
    args = parser.parse_args()
    raw = subprocess.run(
        [args.kubectl, "get", "ftj", args.name, "-n", args.namespace, "-o", "json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    print(json.dumps({"job": args.name, **timeline(json.loads(raw))}, indent=2))


if __name__ == "__main__":
    main()
