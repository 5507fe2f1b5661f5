"""What a FineTuneJob's status needs of its RayJob."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RayJobView:
    """What the status needs of a RayJob."""

    name: str
    deployment: str
    """KubeRay's jobDeploymentStatus: Initializing, Running, Complete, Failed, Suspended, ..."""
    job: str
    """Ray's job status: PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED (empty before)."""
    reason: str
    message: str
    start_time: str | None
    end_time: str | None
    failed: int
    succeeded: int

    @classmethod
    def parse(cls, obj: Mapping[str, Any]) -> RayJobView:
        status = obj.get("status") or {}
        return cls(
            name=str((obj.get("metadata") or {}).get("name", "")),
            deployment=str(status.get("jobDeploymentStatus") or ""),
            job=str(status.get("jobStatus") or ""),
            reason=str(status.get("reason") or ""),
            message=str(status.get("message") or ""),
            start_time=status.get("startTime"),
            end_time=status.get("endTime"),
            failed=int(status.get("failed") or 0),
            succeeded=int(status.get("succeeded") or 0),
        )
