"""A real Prometheus (Debian's package) on loopback for the monitoring tests, and the
PodMonitor's relabeling rules in Prometheus' own configuration terms."""

from __future__ import annotations

import json
import shutil
import socket
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from kubellm_dev.errors import ComponentError
from kubellm_dev.procs import Supervisor

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# What prometheus-operator writes for a PodMonitor's relabeling fields.
_RELABEL_FIELDS = {
    "sourceLabels": "source_labels",
    "targetLabel": "target_label",
    "regex": "regex",
    "replacement": "replacement",
    "action": "action",
    "separator": "separator",
}


def relabel_configs(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A PodMonitor's ``relabelings`` or ``metricRelabelings`` as Prometheus' relabel_configs."""
    return [{_RELABEL_FIELDS[key]: value for key, value in rule.items()} for rule in rules]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(
    scrape_configs: list[dict[str, Any]], folder: Path, rule_files: tuple[Path, ...] = ()
) -> tuple[Supervisor, str]:
    """Prometheus scraping every second; its supervisor and base URL once it is ready."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise ComponentError("prometheus", "missing: scripts/install.sh installs Debian's package")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": scrape_configs,
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = _free_port()
    supervisor = Supervisor(folder / "logs")
    process = supervisor.start(
        "prometheus",
        [
            binary,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        ports=[port],
    )
    url = f"http://127.0.0.1:{port}"
    supervisor.wait_ready(process, lambda: bool(OPENER.open(f"{url}/-/ready", timeout=2)))
    return supervisor, url


def query(url: str, promql: str) -> list[dict[str, Any]]:
    """An instant query's result vector."""
    address = f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with OPENER.open(address, timeout=10) as reply:
        answer = json.loads(reply.read())
    if answer["status"] != "success":
        raise AssertionError(answer)
    return list(answer["data"]["result"])
