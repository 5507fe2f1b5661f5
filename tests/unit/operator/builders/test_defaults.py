"""Operator defaults: what a RayService was built with, and when a deployment moves on."""

from __future__ import annotations

from typing import Any

import pytest

from kubellm_operator.api.llmdeployment import LLMDeploymentSpec
from kubellm_operator.api.refs import Owner
from kubellm_operator.builders.defaults import BUILD_ANNOTATION, BuildDefaults, recorded_in
from kubellm_operator.builders.rayservice import build_rayservice
from kubellm_operator.config import OperatorConfig
from kubellm_operator.service.defaults import ADOPT_ANNOTATION, RolloutSlots, choose

SPEC = LLMDeploymentSpec.parse({"model": {"uri": "hf://a/b"}})
OLD = OperatorConfig(runtime_image="kubellm-runtime:0.1.0")
NEW = OperatorConfig(runtime_image="kubellm-runtime:0.2.0")
KEY = ("ns", "m")


def built(config: OperatorConfig, spec: Any = SPEC) -> dict[str, Any]:
    return build_rayservice(Owner("m", "ns", "uid-1", "LLMDeployment"), spec, config)


def slots(limit: int = 1, seed: tuple[tuple[str, str], ...] = ()) -> RolloutSlots:
    return RolloutSlots(limit, seed=lambda: seed)


def test_a_rayservice_records_the_defaults_it_was_built_with() -> None:
    assert recorded_in(built(OLD), SPEC) == BuildDefaults.of(OLD, SPEC)
    assert recorded_in(None, SPEC) is None


def test_a_rayservice_from_before_the_record_is_read_from_its_own_fields() -> None:
    """What an older kubellm built: no annotation, the same fields."""
    legacy = built(OLD)
    del legacy["metadata"]["annotations"]
    assert recorded_in(legacy, SPEC) == BuildDefaults.of(OLD, SPEC)


def test_a_record_that_cannot_be_read_counts_as_none() -> None:
    broken = built(OLD)
    broken["metadata"]["annotations"][BUILD_ANNOTATION] = "{not json"
    assert recorded_in(broken, SPEC) is None


def test_building_with_recorded_defaults_reproduces_the_child_exactly() -> None:
    """What keeps an operator upgrade from touching anything: the old defaults, reapplied to
    the new configuration, build the same RayService byte for byte."""
    recorded = BuildDefaults.of(OLD, SPEC)
    assert built(recorded.applied_to(NEW)) == built(OLD)
    assert built(NEW) != built(OLD)


def test_values_the_spec_sets_do_not_depend_on_the_operator() -> None:
    spec = LLMDeploymentSpec.parse(
        {"model": {"uri": "hf://a/b"}, "image": "mine:1", "rayVersion": "2.50.0"}
    )
    assert BuildDefaults.of(OLD, spec) == BuildDefaults.of(NEW, spec)
    assert BuildDefaults.of(OLD, spec).runtime_image is None


def choice(recorded: OperatorConfig | None, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"asked": None, "paced": False, "was_upgrading": False}
    options.update(kwargs)
    pool = options.pop("slots", None) or slots()
    return choose(
        KEY,
        BuildDefaults.of(recorded, SPEC) if recorded else None,
        BuildDefaults.of(NEW, SPEC),
        slots=pool,
        **options,
    )


LATEST = BuildDefaults.of(NEW, SPEC)
EARLIER = BuildDefaults.of(OLD, SPEC)


@pytest.mark.parametrize(
    ("recorded", "options", "state", "uses"),
    [
        (None, {}, "Current", LATEST),  # a new deployment takes the operator's defaults
        (NEW, {}, "Current", LATEST),
        (OLD, {}, "Outdated", EARLIER),  # pinned: an operator upgrade changes nothing
        (OLD, {"asked": LATEST.revision}, "Upgrading", LATEST),
        (OLD, {"asked": "latest"}, "Upgrading", LATEST),
        (OLD, {"asked": "0123456789"}, "Outdated", EARLIER),  # a revision it does not have
        (OLD, {"paced": True}, "Upgrading", LATEST),
        (OLD, {"paced": True, "slots": slots(1, (("ns", "other"),))}, "Queued", EARLIER),
        (NEW, {"was_upgrading": True}, "Upgrading", LATEST),  # until Ready on them
    ],
)
def test_which_defaults_a_build_takes(
    recorded: OperatorConfig | None, options: dict[str, Any], state: str, uses: BuildDefaults
) -> None:
    made = choice(recorded, **options)
    assert (made.state, made.use) == (state, uses)
    assert made.status().latest_revision == LATEST.revision


def test_an_outdated_deployment_says_what_differs_and_how_to_move_on() -> None:
    message = choice(OLD).message
    assert "kubellm-runtime:0.1.0" in message
    assert "kubellm-runtime:0.2.0" in message
    assert f"{ADOPT_ANNOTATION}={LATEST.revision}" in message


def test_a_wrong_revision_is_named() -> None:
    assert "=0123456789 names no revision" in choice(OLD, asked="0123456789").message


def test_a_spec_that_takes_over_a_value_is_not_outdated_for_it() -> None:
    """Recorded with the operator's image, then the spec names its own: nothing to roll."""
    spec = LLMDeploymentSpec.parse({"model": {"uri": "hf://a/b"}, "image": "mine:1"})
    made = choose(
        KEY,
        BuildDefaults.of(OLD, SPEC),
        BuildDefaults.of(NEW, spec),
        asked=None,
        paced=False,
        was_upgrading=False,
        slots=slots(),
    )
    assert made.state == "Current"


def test_upgrading_settles_once_ready() -> None:
    made = choice(OLD, paced=True)
    assert made.settled(ready=False).state == "Upgrading"
    assert made.settled(ready=True).state == "Current"


def test_slots_are_limited_kept_by_their_holder_and_freed() -> None:
    pool = slots(2)
    assert pool.take(("ns", "a"))
    assert pool.take(("ns", "b"))
    assert not pool.take(("ns", "c"))
    assert pool.take(("ns", "a"))  # a holder keeps its slot
    pool.release(("ns", "a"))
    assert pool.take(("ns", "c"))


def test_slots_count_the_upgrades_found_at_start_once() -> None:
    reads: list[int] = []

    def seed() -> list[tuple[str, str]]:
        reads.append(1)
        return [("ns", "was-upgrading")]

    pool = RolloutSlots(1, seed)
    assert not pool.take(("ns", "a"))
    assert pool.holds(("ns", "was-upgrading"))
    pool.release(("ns", "was-upgrading"))
    assert pool.take(("ns", "a"))
    assert len(reads) == 1


def test_a_seed_that_fails_is_read_again_next_time() -> None:
    answers: list[Any] = [RuntimeError("list failed"), []]

    def seed() -> list[tuple[str, str]]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return list(answer)

    pool = RolloutSlots(1, seed)
    with pytest.raises(RuntimeError):
        pool.take(("ns", "a"))
    assert pool.take(("ns", "a"))
