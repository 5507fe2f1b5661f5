"""The operator's command line: peering priorities that differ between replicas."""

from __future__ import annotations

from kubellm_operator.__main__ import MAX_PRIORITY, priority
from kubellm_operator.config import OperatorConfig


def test_replicas_of_one_deployment_get_distinct_stable_priorities() -> None:
    config = OperatorConfig(peering_name="kubellm")
    pods = [f"kubellm-operator-7c9d8f-{suffix}" for suffix in ("abcde", "fghij", "klmno")]
    priorities = [priority(config, pod) for pod in pods]
    assert len(set(priorities)) == len(pods)
    assert priorities == [priority(config, pod) for pod in pods]  # the same on a restart
    assert all(1 <= p <= MAX_PRIORITY for p in priorities)


def test_a_configured_priority_wins() -> None:
    assert priority(OperatorConfig(peering_priority=7), "any-pod") == 7
