"""The dashboard and the alerts against real data: a real Prometheus (Debian's) on loopback
scrapes the operator (reconciling an LLMDeployment with an adapter and a FineTuneJob with
progress) and a real runtime in local mode answering requests; every dashboard panel's
query returns data there, every metric an alert reads exists, and Prometheus loads the rules."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kubellm_dev import prometheus
from kubellm_dev.operator_proc import OperatorProcess
from kubellm_dev.prometheus import OPENER, query
from kubellm_dev.waiting import wait_for
from tests.integration.conftest import RuntimeServer, serve_locally

from .chart import CHART
from .conftest import E2ECluster
from .test_llmdeployment import provide_claims, small, wait_ready

GROUP, VERSION = "kubellm.io", "v1alpha1"
ALERTS = CHART / "files" / "alerts.yaml"
DASHBOARD = CHART / "files" / "dashboard.json"
METRIC = re.compile(r"\b((?:llm|kubellm)_[a-z_]+|up)\b(?!\s*\()")


@pytest.fixture
def runtime() -> Iterator[RuntimeServer]:
    """Local mode on the zero-cost engine: the real ingress, routes and metrics."""
    scratch = Path(tempfile.mkdtemp(prefix="kubellm-monitoring-"))
    supervisor, server = serve_locally(scratch, "fake-llm", scratch / "logs", ("--engine", "fake"))
    try:
        yield server
    finally:
        supervisor.stop_all()


def traffic(runtime: RuntimeServer) -> None:
    """Plain and streamed chat completions: requests, durations, tokens, first tokens."""
    messages = [{"role": "user", "content": "hello"}]
    with httpx.Client(base_url=runtime.base_url, timeout=30, trust_env=False) as http:
        for stream in (False, True, False, True):
            body = {"model": runtime.model, "messages": messages, "max_tokens": 8, "stream": stream}
            assert http.post("/v1/chat/completions", json=body).status_code == 200


def with_adapter(name: str) -> dict[str, Any]:
    doc = small(name, enableLora=True)
    doc["spec"]["adapters"] = [{"name": "sql", "uri": "s3://adapters/sql"}]
    return doc


def test_every_panel_and_alert_reads_real_series(
    cluster: E2ECluster, namespace: str, kubellm_operator: OperatorProcess, runtime: RuntimeServer
) -> None:
    custom = cluster.custom
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "llmdeployments", with_adapter("watched")
    )
    job = yaml.safe_load((CHART.parents[1] / "examples/finetunejobs/tiny-cpu.yaml").read_text())
    job["metadata"] = {"name": "tuning"}
    provide_claims(cluster, namespace, job["spec"])
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "finetunejobs", job)
    wait_ready(cluster, namespace, "watched")
    progress = {"progress": {"step": 5, "totalSteps": 20, "loss": 1.5}}
    custom.patch_namespaced_custom_object_status(  # what the trainer writes
        GROUP, VERSION, namespace, "finetunejobs", "tuning", {"status": progress}
    )
    traffic(runtime)
    folder = Path(tempfile.mkdtemp(prefix="kubellm-prometheus-"))
    operator = kubellm_operator.metrics_url.removeprefix("http://").removesuffix("/metrics")
    targets = {
        "kubellm-operator": operator,
        "kubellm-runtime": runtime.base_url.removeprefix("http://"),
    }
    scrapes = [
        {"job_name": job, "static_configs": [{"targets": [target]}]}
        for job, target in targets.items()
    ]
    supervisor, url = prometheus.start(scrapes, folder, rule_files=(ALERTS,))
    try:
        wait_for(
            lambda: query(url, "up == 1"),
            lambda found: len(found) == len(targets),
            timeout=60,
            what="Prometheus to scrape the operator and the runtime",
        )
        traffic(runtime)  # again, now that rates have a first sample to start from
        dashboard = json.loads(DASHBOARD.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                wait_for(
                    lambda expr=target["expr"]: query(url, expr),
                    bool,
                    timeout=60,
                    what=f"data for panel {panel['title']!r}: {target['expr']}",
                )
        rules = yaml.safe_load(ALERTS.read_text())
        for group in rules["groups"]:
            for rule in group["rules"]:
                for name in set(METRIC.findall(rule["expr"])):
                    assert query(url, f"count({name})"), f"{rule['alert']}: no series {name}"
        with OPENER.open(f"{url}/api/v1/rules", timeout=10) as reply:
            loaded = json.loads(reply.read())["data"]["groups"]
        states = [r for g in loaded for r in g["rules"]]
        assert len(states) == sum(len(g["rules"]) for g in rules["groups"])
        assert all(r["health"] == "ok" for r in states), states
    finally:
        supervisor.stop_all()
