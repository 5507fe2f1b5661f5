"""Two replicas of one deployment on real Ray Serve (the operator's serve config, through
Serve's proxy, transformers engine on the tiny model): a job_id is generated once whichever
replica a repeat lands on, adapters changed in the spec reach every replica live, with
no replica restarted, and each replica's runtime series reach a real Prometheus through Ray's
metrics port under the names the dashboard reads (the chart's PodMonitor relabeling)."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubellm_dev import build, netns, prometheus
from kubellm_dev.paths import default_paths
from kubellm_dev.serve_local import LocalServe, local_serve
from kubellm_dev.waiting import wait_for
from kubellm_operator.api.llmdeployment import LLMDeploymentSpec
from kubellm_operator.builders.serve_config import ResolvedAdapter, replica_config

from .conftest import _unavailable, free_ray_ports

pytestmark = pytest.mark.integration
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
SEEN_DEADLINE_S = 120.0


def spec(model: Path, **extra: Any) -> LLMDeploymentSpec:
    return LLMDeploymentSpec.parse(
        {
            "model": {"uri": f"file://{model}", "servedName": "tiny", "maxModelLen": 256},
            "replicas": 2,
            "engine": {"backend": "transformers"},
            "resources": {"gpusPerReplica": 0, "cpu": "1", "memory": "2Gi"},
            "placement": {"nodePool": "cpu"},
            "enableLora": True,
            **extra,
        }
    )


@pytest.fixture(scope="module")
def serve(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServe]:
    if not netns.loopback_only():
        _unavailable("Ray Serve runs only in a loopback-only namespace here: use `make test`")
    ports = free_ray_ports()
    logs = tmp_path_factory.mktemp("serve-logs")
    with local_serve(spec(tiny_model_dir), logs, ports=ports) as running:
        yield running


def post(serve: LocalServe, path: str, body: dict[str, Any]) -> tuple[int, Any, str]:
    """Status, JSON body and the id of the replica that answered."""
    call = urllib.request.Request(
        f"{serve.proxy}{path}", data=json.dumps(body).encode(), method="POST"
    )
    call.add_header("Content-Type", "application/json")
    try:
        with OPENER.open(call, timeout=120) as reply:
            return int(reply.status), json.loads(reply.read()), reply.headers["X-Kubellm-Replica"]
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read()), exc.headers["X-Kubellm-Replica"]


def from_every_replica(
    ask: Callable[[], tuple[int, Any, str]], replicas: int = 2
) -> dict[str, list[tuple[int, Any]]]:
    """Ask until each replica has answered at least once (Serve picks one per request)."""
    answers: dict[str, list[tuple[int, Any]]] = {}
    deadline = time.monotonic() + SEEN_DEADLINE_S
    while len(answers) < replicas:
        assert time.monotonic() < deadline, f"only replicas {sorted(answers)} answered"
        status, body, replica = ask()
        answers.setdefault(replica, []).append((status, body))
    return answers


JOB = {"job_id": "shared-1", "meta": {"temperature": 1.0, "tokens_limit": 12}, "content": "Hi"}


def test_a_job_id_is_generated_once_across_replicas(serve: LocalServe) -> None:
    answers = from_every_replica(lambda: post(serve, "/generate", JOB))
    contents = {body["content"] for replies in answers.values() for _, body in replies}
    statuses = {status for replies in answers.values() for status, _ in replies}
    assert statuses == {200}
    assert len(contents) == 1  # the replica that did not generate answered the stored text
    # Control: the same body under a new job_id samples again (temperature 1): the equal
    # answers above are the store's doing, not a deterministic model.
    fresh = {
        post(serve, "/generate", {**JOB, "job_id": f"other-{n}"})[1]["content"] for n in range(3)
    }
    assert contents.isdisjoint(fresh)
    # The id with another body is refused on every replica.
    reused = from_every_replica(lambda: post(serve, "/generate", {**JOB, "content": "Bye"}))
    assert {s for replies in reused.values() for s, _ in replies} == {409}


def test_adapters_in_the_spec_reach_every_replica_without_a_restart(
    serve: LocalServe, tiny_model_dir: Path, tiny_adapter_dir: Path
) -> None:
    chat = {"model": "tuned", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    before = from_every_replica(lambda: post(serve, "/v1/chat/completions", chat))
    assert {s for replies in before.values() for s, _ in replies} == {404}

    uri = f"file://{tiny_adapter_dir}"
    with_adapter = spec(tiny_model_dir, adapters=[{"name": "tuned", "uri": uri}])
    adapters = (ResolvedAdapter("tuned", uri),)
    serve.deploy(with_adapter, adapters)
    serve.wait_running(replica_config(with_adapter, adapters))
    loaded = from_every_replica(lambda: post(serve, "/v1/chat/completions", chat))
    assert {s for replies in loaded.values() for s, _ in replies} == {200}
    assert set(loaded) == set(before)  # the same two replicas: reconfigured, not replaced

    serve.deploy(spec(tiny_model_dir))
    serve.wait_running(replica_config(spec(tiny_model_dir), ()))
    removed = from_every_replica(lambda: post(serve, "/v1/chat/completions", chat))
    assert {s for replies in removed.values() for s, _ in replies} == {404}
    assert set(removed) == set(before)


def stream(serve: LocalServe, body: dict[str, Any]) -> tuple[int, Any, str]:
    """A streamed chat completion read to its end: status, its data frames, the replica."""
    call = urllib.request.Request(
        f"{serve.proxy}/v1/chat/completions",
        data=json.dumps({**body, "stream": True}).encode(),
        method="POST",
    )
    call.add_header("Content-Type", "application/json")
    with OPENER.open(call, timeout=120) as reply:
        frames = [line for line in reply.read().decode().splitlines() if line.startswith("data:")]
        return int(reply.status), frames, reply.headers["X-Kubellm-Replica"]


def pod_monitor() -> dict[str, Any]:
    """The chart's PodMonitor for the Ray pods, rendered by the real Helm CLI."""
    paths = default_paths()
    rendered = subprocess.run(
        [
            str(build.installed(paths).helm),
            *("template", "kubellm", str(paths.repo / "charts" / "kubellm")),
            *("--set", "monitoring.podMonitor.enabled=true"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (found,) = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "PodMonitor"]
    return dict(found)


def test_each_replicas_series_reach_prometheus_through_rays_metrics_port(
    serve: LocalServe,
) -> None:
    chat = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    (endpoint,) = pod_monitor()["spec"]["podMetricsEndpoints"]
    scrape = {
        "job_name": "kubellm-runtime",
        "static_configs": [{"targets": [serve.metrics]}],
        "relabel_configs": prometheus.relabel_configs(endpoint["relabelings"]),
        "metric_relabel_configs": prometheus.relabel_configs(endpoint["metricRelabelings"]),
    }
    supervisor, url = prometheus.start([scrape], Path(tempfile.mkdtemp(prefix="kubellm-prom-")))
    try:
        plain = from_every_replica(lambda: post(serve, "/v1/chat/completions", chat))
        streamed = from_every_replica(lambda: stream(serve, chat))
        for answers in (plain, streamed):
            assert {s for replies in answers.values() for s, _ in replies} == {200}
        for replies in streamed.values():  # every stream ran to its end
            for _, frames in replies:
                assert frames[-1] == "data: [DONE]"
                assert json.loads(frames[-2][6:])["choices"][0]["finish_reason"] in {
                    "length",
                    "stop",
                }
        replicas = set(plain) | set(streamed)
        assert len(replicas) == 2
        # Each replica is its own series (its Ray worker), never one answering for both.
        per_worker = wait_for(
            lambda: prometheus.query(
                url, 'count by (WorkerId) (llm_requests_total{route="/v1/chat/completions"})'
            ),
            lambda found: len(found) == 2,
            timeout=90,
            what="both replicas' llm_requests_total in Prometheus",
        )
        assert {s["metric"]["WorkerId"] for s in per_worker}
        dashboard = json.loads(
            (default_paths().repo / "charts/kubellm/files/dashboard.json").read_text()
        )
        runtime_panels = [
            (panel["title"], target["expr"])
            for panel in dashboard["panels"]
            for target in panel.get("targets", [])
            if "llm_" in target["expr"] and "kubellm_" not in target["expr"]
        ]
        assert runtime_panels
        for title, expr in runtime_panels:
            if "engine_errors" in expr or "rejected" in expr:
                continue  # Ray's counters appear at their first increase: none here
            wait_for(
                lambda expr=expr: prometheus.query(url, expr),
                bool,
                timeout=60,
                what=f"data for panel {title!r}: {expr}",
            )
        jobs = {s["metric"]["job"] for s in prometheus.query(url, "llm_requests_total")}
        assert jobs == {"kubellm-runtime"}  # the job the alerts select
    finally:
        supervisor.stop_all()
