"""What every kind's status is stamped from: a condition's verdict before it is stamped."""

from __future__ import annotations

from dataclasses import dataclass

from kubellm_operator.api.common import ConditionStatus


@dataclass(frozen=True)
class Verdict:
    """One condition's status, reason and message, before it is stamped for the object."""

    status: ConditionStatus
    reason: str
    message: str

    @property
    def ok(self) -> bool:
        return self.status == "True"
