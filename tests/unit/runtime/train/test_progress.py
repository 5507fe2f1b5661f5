"""Progress as status.progress: the fields a user watches, and writes paced by the reporter
(first step, evaluations and the end always written; a failed write never stops training)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from kubellm_runtime.train.progress import Reporter, Snapshot, duration, progress

NOW = datetime(2026, 12, 2, 10, 0, 0, tzinfo=UTC)


def snap(step: int, **changes: Any) -> Snapshot:
    values: dict[str, Any] = {
        "step": step,
        "total_steps": 100,
        "epoch": step / 50,
        "loss": 1.23456,
        "eval_loss": None,
        "trained_tokens": step * 1000,
        "tokens_this_attempt": step * 1000,
        "elapsed_s": step * 2.0,
        "steps_this_attempt": step,
    }
    return Snapshot(**{**values, **changes})


def test_progress_has_percent_eta_and_tokens_per_second() -> None:
    fields = progress(snap(25), NOW)
    assert fields == {
        "step": 25,
        "totalSteps": 100,
        "epoch": 0.5,
        "trainedTokens": 25_000,
        "percent": 25,
        "loss": 1.2346,
        "tokensPerSecond": 500.0,
        "eta": "2m30s",  # 75 steps left at 2 s a step
        "estimatedFinish": "2026-12-02T10:02:30Z",
        "updatedAt": "2026-12-02T10:00:00Z",
    }


def test_a_resumed_run_paces_its_eta_on_this_attempts_steps_only() -> None:
    # Resumed at step 80 of 100: 10 steps in 10 s this attempt, 10 left.
    fields = progress(
        snap(
            90,
            elapsed_s=10.0,
            steps_this_attempt=10,
            tokens_this_attempt=5000,
            resumed_from_step=80,
        ),
        NOW,
    )
    assert (fields["eta"], fields["tokensPerSecond"], fields["percent"]) == ("10s", 500.0, 90)
    assert fields["resumedFromStep"] == 80  # the user sees where it continued
    assert "resumedFromStep" not in progress(snap(10), NOW)  # a fresh start says nothing


def test_missing_or_non_finite_losses_are_left_out() -> None:
    fields = progress(snap(0, loss=float("nan"), elapsed_s=0.0), NOW)
    assert "loss" not in fields
    assert "eta" not in fields
    assert fields["percent"] == 0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45.4, "45s"), (200, "3m20s"), (7500, "2h5m"), (3 * 86_400 + 4 * 3600, "3d4h")],
)
def test_durations_read_like_kubectl(seconds: float, text: str) -> None:
    assert duration(seconds) == text


class Recording:
    def __init__(self, fail: bool = False) -> None:
        self.writes: list[dict[str, Any]] = []
        self.fail = fail

    def write(self, status: dict[str, Any]) -> None:
        if self.fail:
            raise OSError("connection refused")
        self.writes.append(status)


def test_writes_are_paced_by_the_interval_unless_forced() -> None:
    now = [0.0]
    sink = Recording()
    reporter = Reporter(sink, interval_s=10, clock=lambda: now[0], wall=lambda: NOW)
    written = []
    for step in range(1, 31):  # one step a second
        now[0] = float(step)
        written.append(reporter.report(snap(step), force=step == 30))
    steps = [w["progress"]["step"] for w in sink.writes]
    assert steps == [1, 11, 21, 30]
    assert written.count(True) == 4


def test_a_failed_write_is_logged_and_training_goes_on() -> None:
    reporter = Reporter(Recording(fail=True), interval_s=0)
    assert reporter.report(snap(1)) is False
    assert reporter.write({"adapterUri": "pvc://x/y"}) is False
