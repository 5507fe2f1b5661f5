"""What a FineTuneJob's status needs of its RayJob, parsed once from KubeRay's object."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import Field

from kubellm_operator.status.view import View


class RayJobView(View):
    """KubeRay's status of a RayJob (absent or null fields read as empty)."""

    name: str = ""
    deployment: str = Field("", alias="jobDeploymentStatus")
    """KubeRay's jobDeploymentStatus: Initializing, Running, Complete, Failed, Suspended, ..."""
    job: str = Field("", alias="jobStatus")
    """Ray's job status: PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED (empty before)."""
    reason: str = ""
    message: str = ""
    start_time: str | None = None
    end_time: str | None = None
    failed: int = 0
    succeeded: int = 0

    @classmethod
    def parse(cls, obj: Mapping[str, Any]) -> Self:
        status = {k: v for k, v in (obj.get("status") or {}).items() if v is not None}
        return cls.model_validate({**status, "name": (obj.get("metadata") or {}).get("name", "")})
