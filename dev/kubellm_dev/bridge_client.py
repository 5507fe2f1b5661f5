"""Client for the Ray bridge's control API, used by tests and the CLI to script KubeRay's view."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from typing import Any

from kubellm_dev.bridge_state import Mode


@dataclass(frozen=True)
class BridgeClient:
    port: int

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/__bridge/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        # The bridge is on loopback: never route its control calls through a proxy.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=10) as resp:
            return json.loads(resp.read() or b"{}")

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "state")
        return result

    def alive(self) -> bool:
        try:
            self.state()
        except OSError:
            return False
        return True

    def set_real(self, dashboard: str, serve: str) -> None:
        self._call("PUT", "real", {"dashboard": dashboard, "serve": serve})

    def set_default_mode(self, mode: Mode) -> None:
        self._call("PUT", "default-mode", {"mode": mode})

    def set_mode(self, namespace: str, mode: Mode) -> None:
        self._call("PUT", f"namespaces/{namespace}/mode", {"mode": mode})

    def set_app_status(self, namespace: str, app: str, status: str, message: str = "") -> None:
        self._call(
            "PUT", f"namespaces/{namespace}/apps/{app}", {"status": status, "message": message}
        )

    def set_job_status(
        self, namespace: str, job_prefix: str, status: str, message: str = ""
    ) -> None:
        self._call(
            "PUT",
            f"namespaces/{namespace}/jobs/{job_prefix}",
            {"status": status, "message": message},
        )

    def reset(self, namespace: str) -> None:
        self._call("DELETE", f"namespaces/{namespace}")
