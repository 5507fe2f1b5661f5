"""What every kind's status is stamped from: a condition's verdict, stamped once for the object.

Both kinds stamp their conditions here, so a condition keeps its lastTransitionTime while its
status is unchanged and carries the generation it describes, the same way for either kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kubellm_operator.api.common import Condition, ConditionStatus

MAX_MESSAGE = 1024
"""A condition's message is capped: an API server answer or a trainer's error can be long."""


@dataclass(frozen=True)
class Verdict:
    """One condition's status, reason and message, before it is stamped for the object."""

    status: ConditionStatus
    reason: str
    message: str

    @property
    def ok(self) -> bool:
        return self.status == "True"


def cap(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def stamp(
    previous: Iterable[Condition], type_: str, verdict: Verdict, generation: int, now: str
) -> Condition:
    """The condition ``type_`` for ``generation``: its transition time is kept while its
    status is what it was."""
    before = next((c for c in previous if c.type == type_), None)
    keep = before is not None and before.status == verdict.status and before.last_transition_time
    return Condition(
        type=type_,
        status=verdict.status,
        reason=verdict.reason,
        message=cap(verdict.message),
        observed_generation=generation,
        last_transition_time=before.last_transition_time if keep and before else now,
    )


def missing_claims(missing: Mapping[str, str], namespace: str) -> str:
    """What a kind waiting for PersistentVolumeClaims (claim → the field naming it) says."""
    named = ", ".join(f"{claim} ({field})" for claim, field in sorted(missing.items()))
    noun = "PersistentVolumeClaim" if len(missing) == 1 else "PersistentVolumeClaims"
    return f"{noun} {named} not found in namespace {namespace}; waiting for it to be created"
