"""Conditions are stamped alike for every kind: the transition time is kept while the status
is unchanged, the message capped; a status patch clears only the fields the operator owns."""

from __future__ import annotations

from kubellm_operator.api.common import Condition
from kubellm_operator.status.conditions import MAX_MESSAGE, Verdict, stamp
from kubellm_operator.status.patch import changed, merge_patch

EARLIER, NOW = "2026-12-01T10:00:00Z", "2026-12-07T10:00:00Z"
READY = Condition(
    type="Ready",
    status="False",
    reason="Creating",
    message="",
    observed_generation=1,
    last_transition_time=EARLIER,
)


def test_a_condition_keeps_its_transition_time_while_its_status_is_unchanged() -> None:
    same = stamp([READY], "Ready", Verdict("False", "Deploying", "x"), 2, NOW)
    assert (same.last_transition_time, same.reason, same.observed_generation) == (
        EARLIER,
        "Deploying",
        2,
    )
    flipped = stamp([READY], "Ready", Verdict("True", "Serving", ""), 2, NOW)
    assert flipped.last_transition_time == NOW
    first = stamp([], "Stalled", Verdict("False", "Progressing", ""), 1, NOW)
    assert first.last_transition_time == NOW


def test_a_long_message_is_capped() -> None:
    long = stamp([], "Ready", Verdict("False", "ApiError", "x" * 5000), 1, NOW)
    assert len(long.message) == MAX_MESSAGE
    assert long.message.endswith("…")


def test_a_patch_clears_the_owned_fields_the_status_lost_and_leaves_the_others_writers() -> None:
    before = {"phase": "Running", "endpoint": "http://x", "adapterUri": "pvc://a"}
    patch = merge_patch(
        {"phase": "Failed"}, clear=("phase", "endpoint"), skip=("adapterUri", "progress")
    )
    assert patch == {"phase": "Failed", "endpoint": None}
    assert changed(patch, before)
    assert not changed(merge_patch({"phase": "Running"}, skip=("adapterUri",)), before)
