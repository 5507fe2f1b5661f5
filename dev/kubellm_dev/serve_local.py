"""kubellm as users reach it, without Kubernetes: a real Ray head running the Serve application
the operator writes, deployed through the dashboard's declarative API as KubeRay does it.

Requests go through Ray Serve's HTTP proxy (proxy → router → replica → the kubellm ingress),
what a client of the serve Service hits. Used by the integration tier (several replicas) and
by the runtime benchmarks.
"""

from __future__ import annotations

import json
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubellm_dev.procs import Supervisor
from kubellm_dev.ray_head import RayPorts, start_ray_head
from kubellm_operator.api.llmdeployment import LLMDeploymentSpec
from kubellm_operator.builders.serve_config import ResolvedAdapter, serve_config
from kubellm_operator.config import OperatorConfig
from kubellm_runtime.contract import SERVE_APP

DEPLOY_TIMEOUT_S = 600.0
DEPLOY_PUT_S = 120.0
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
APPS = "/api/serve/applications/"


def request(
    url: str, method: str = "GET", body: bytes | None = None, timeout: float = 10.0
) -> tuple[int, bytes]:
    call = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - loopback
    call.add_header("Content-Type", "application/json")
    try:
        with OPENER.open(call, timeout=timeout) as reply:
            return int(reply.status), reply.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except OSError:
        return 0, b""


@dataclass
class LocalServe:
    """A Ray head on loopback with the kubellm application deployed (or being deployed)."""

    dashboard: str
    proxy: str
    metrics: str
    """host:port of the head's Ray metrics export (every replica's ray.util.metrics)."""

    def details(self) -> dict[str, Any]:
        status, body = request(f"{self.dashboard}{APPS}")
        return dict(json.loads(body)) if status == 200 else {}  # noqa: PLR2004

    def app(self) -> dict[str, Any]:
        return dict((self.details().get("applications") or {}).get(SERVE_APP) or {})

    def deploy(
        self,
        spec: LLMDeploymentSpec,
        adapters: tuple[ResolvedAdapter, ...] = (),
        import_path: str | None = None,
    ) -> dict[str, Any]:
        """PUT the operator's serve config for ``spec``, as KubeRay does on a spec change;
        returns the model deployment's config as written. ``import_path`` replaces the
        application's (a benchmark's variant of the kubellm application)."""
        config = yaml.safe_load(serve_config(spec, adapters, OperatorConfig()))
        if import_path is not None:
            config["applications"][0]["import_path"] = import_path
        # The operator's config leaves Serve's proxy on its default port (KubeRay's serve
        # Service targets it); here it goes where this head's ports say.
        port = int(self.proxy.rsplit(":", 1)[1])
        config["http_options"] = {"host": "127.0.0.1", "port": port}
        # The first PUT starts Serve's controller on the head: on a busy machine (the e2e
        # tier's Ray head serving beside it) that took over 10 s in a CI run.
        status, body = request(
            f"{self.dashboard}{APPS}", "PUT", json.dumps(config).encode(), timeout=DEPLOY_PUT_S
        )
        if status != 200:  # noqa: PLR2004
            raise RuntimeError(f"serve deploy refused ({status}): {body[:500]!r}")
        return dict(config["applications"][0]["deployments"][0])

    def wait_running(self, user_config: dict[str, Any] | None = None) -> None:
        """Until the application is RUNNING (with ``user_config`` applied, when given)."""
        deadline = time.monotonic() + DEPLOY_TIMEOUT_S
        while True:
            app = self.app()
            applied = [
                d.get("user_config")
                for d in (app.get("deployed_app_config") or {}).get("deployments") or ()
            ]
            done = app.get("status") == "RUNNING" and (
                user_config is None or applied == [user_config]
            )
            if done:
                break
            if app.get("status") == "DEPLOY_FAILED" or time.monotonic() > deadline:
                raise RuntimeError(f"serve application ended {app.get('status') or 'unreachable'}")
            time.sleep(0.5)
        while request(f"{self.proxy}/health")[0] != 200:  # noqa: PLR2004
            if time.monotonic() > deadline:
                raise RuntimeError("the Serve proxy never answered /health")
            time.sleep(0.5)

    def delete(self) -> None:
        """Shut the application down as Serve does on a redeploy, before the head goes: a
        replica killed with its head leaves vLLM's engine processes behind, spinning."""
        request(f"{self.dashboard}{APPS}", "DELETE")
        deadline = time.monotonic() + DEPLOY_TIMEOUT_S
        while self.app().get("status") not in (None, "NOT_STARTED"):
            if time.monotonic() > deadline:
                raise RuntimeError("the Serve application was never deleted")
            time.sleep(0.5)


@contextmanager
def local_serve(
    spec: LLMDeploymentSpec,
    logs: Path,
    env: dict[str, str] | None = None,
    ports: RayPorts | None = None,
    import_path: str | None = None,
) -> Iterator[LocalServe]:
    """A Ray head with the operator's serve config for ``spec`` RUNNING (the application at
    ``import_path`` instead of kubellm's, when given)."""
    ports = ports or RayPorts()
    supervisor = Supervisor(logs)
    temp = Path(tempfile.gettempdir()) / "kubellm-local-serve"
    try:
        start_ray_head(supervisor, temp, ports, extra_env=env)
        serve = LocalServe(
            f"http://127.0.0.1:{ports.dashboard}",
            f"http://127.0.0.1:{ports.serve}",
            f"127.0.0.1:{ports.metrics}",
        )
        serve.deploy(spec, import_path=import_path)
        serve.wait_running()
        yield serve
        serve.delete()
    finally:
        supervisor.stop_all()
