"""An operator upgrade that changes its default runtime image, on the real control plane and
KubeRay: every RayService stays untouched until a rollout is asked for, then they move one at
a time, each only once the one before is Ready on the new defaults."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import yaml
from kubernetes import watch

from kubellm_dev.operator_proc import OperatorProcess
from kubellm_dev.waiting import wait_for

from .conftest import E2ECluster
from .test_llmdeployment import GROUP, PLURAL, READY, VERSION, condition, kubectl, small

FLEET = ("d0", "d1", "d2")
NEXT_IMAGE = "ghcr.io/kubellm/kubellm-runtime:0.2.0-e2e"
Fleet = dict[str, dict[str, Any]]


@contextmanager
def upgrades(operator: OperatorProcess) -> Iterator[Callable[[dict[str, str]], None]]:
    """Restarts of the session operator with more settings (each an operator upgrade); as it
    was afterwards."""
    saved = dict(operator.extra_env)

    def restart(env: dict[str, str]) -> None:
        operator.kill()
        operator.extra_env = {**saved, **env}
        operator.start()

    try:
        yield restart
    finally:
        operator.kill()
        operator.extra_env = saved
        operator.start()


def fleet(cluster: E2ECluster, namespace: str) -> tuple[Fleet, str]:
    listed = cluster.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    found = {o["metadata"]["name"]: o for o in listed["items"]}
    return found, str(listed["metadata"]["resourceVersion"])


def history(
    cluster: E2ECluster, namespace: str, done: Callable[[Fleet], bool], timeout: float
) -> list[Fleet]:
    """Every state the fleet passes through, in the API server's order (a watch delivers each
    write), until ``done`` holds: nothing is sampled, so nothing in between is missed."""
    latest, version = fleet(cluster, namespace)
    seen = [dict(latest)]
    if done(latest):
        return seen
    stream = watch.Watch()
    for event in stream.stream(
        cluster.custom.list_namespaced_custom_object,
        *(GROUP, VERSION, namespace, PLURAL),
        resource_version=version,
        timeout_seconds=int(timeout),
    ):
        obj = event["object"]
        latest[obj["metadata"]["name"]] = obj
        seen.append(dict(latest))
        if done(latest):
            stream.stop()
            return seen
    raise AssertionError(f"not done in {timeout:.0f}s; last: {summary(latest)}")


def state(obj: dict[str, Any]) -> str:
    return str(((obj.get("status") or {}).get("defaults") or {}).get("state"))


def ready(obj: dict[str, Any]) -> bool:
    return condition(obj, "Ready").get("status") == "True"


def summary(found: Fleet) -> dict[str, tuple[str, bool]]:
    return {name: (state(o), ready(o)) for name, o in sorted(found.items())}


def rayservices(cluster: E2ECluster, namespace: str) -> dict[str, tuple[Any, ...]]:
    """What the operator writes of each RayService: its generation (moves with any change of
    the spec), its spec and its annotations; and the head image. Not the resourceVersion:
    KubeRay's own status writes move that."""
    items = cluster.custom.list_namespaced_custom_object("ray.io", "v1", namespace, "rayservices")
    return {
        rs["metadata"]["name"]: (
            rs["metadata"]["generation"],
            json.dumps(rs["spec"], sort_keys=True),
            json.dumps(rs["metadata"].get("annotations") or {}, sort_keys=True),
            rs["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0][
                "image"
            ],
        )
        for rs in items["items"]
    }


def all_current_and_ready(found: Fleet) -> bool:
    return len(found) == len(FLEET) and all(
        state(o) == "Current" and ready(o) for o in found.values()
    )


def all_on_next(found: Fleet) -> bool:
    """Every deployment Ready and Current on the upgraded operator's defaults."""
    return all_current_and_ready(found) and all(
        o["status"]["defaults"].get("runtimeImage") == NEXT_IMAGE for o in found.values()
    )


def test_an_operator_upgrade_rolls_nothing_until_asked_then_one_deployment_at_a_time(
    cluster: E2ECluster, namespace: str, kubellm_operator: OperatorProcess
) -> None:
    documents = yaml.safe_dump_all([small(name) for name in FLEET])
    result = kubectl(cluster, "apply", "-n", namespace, "-f", "-", input=documents)
    assert result.returncode == 0, result.stderr
    history(cluster, namespace, all_current_and_ready, READY * 2)
    built = rayservices(cluster, namespace)
    old_image = next(iter(built.values()))[-1]
    assert old_image != NEXT_IMAGE

    with upgrades(kubellm_operator) as restart:
        restart({"KUBELLM_RUNTIME_IMAGE": NEXT_IMAGE})
        found = wait_for(
            lambda: fleet(cluster, namespace)[0],
            lambda f: all(state(o) == "Outdated" for o in f.values()),
            timeout=READY,
            what="every deployment reported on the old defaults",
        )
        assert rayservices(cluster, namespace) == built  # no RayService changed
        assert all(ready(o) for o in found.values())  # and still serving
        table = kubectl(cluster, "get", "llmd", "-n", namespace)
        assert table.returncode == 0, table.stderr
        header, *rows = table.stdout.splitlines()
        column = header.split().index("DEFAULTS")
        assert [row.split()[column] for row in rows] == ["Outdated"] * len(FLEET)
        message = found["d0"]["status"]["defaults"]["message"]
        assert NEXT_IMAGE in message
        assert "kubellm.io/adopt-defaults=" in message

        # The rollout, asked for fleet-wide: the chart's runtime.rollout.mode=paced.
        restart({"KUBELLM_RUNTIME_IMAGE": NEXT_IMAGE, "KUBELLM_DEFAULTS_ROLLOUT": "paced"})
        states = history(cluster, namespace, all_on_next, READY * 2 * len(FLEET))

    moving = [[n for n, o in sorted(s.items()) if state(o) == "Upgrading"] for s in states]
    assert max(len(m) for m in moving) == 1, [summary(s) for s in states]
    order: list[str] = []
    for names in moving:  # the order they moved in: each once, one after another
        if names and (not order or order[-1] != names[0]):
            order.append(names[0])
    assert sorted(order) == sorted(FLEET), order
    for snapshot, names in zip(states, moving, strict=True):
        for earlier in order[: order.index(names[0])] if names else ():
            assert state(snapshot[earlier]) == "Current", summary(snapshot)
            assert ready(snapshot[earlier]), summary(snapshot)
    after = rayservices(cluster, namespace)
    assert {image for *_, image in after.values()} == {NEXT_IMAGE}
