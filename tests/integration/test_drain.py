"""Graceful shutdown: on SIGTERM the runtime stops accepting and finishes what is in flight."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import httpx

from kubellm_dev.waiting import wait_for

from .conftest import serve_locally

TOKENS = 40
TOKEN_DELAY = 0.05  # the in-flight request takes ~2 s


def test_sigterm_drains_in_flight_requests_and_refuses_new_ones(tmp_path: Path) -> None:
    supervisor, server = serve_locally(
        "fake",
        "fake",
        tmp_path,
        ("--engine", "fake", "--fake-token-delay", str(TOKEN_DELAY)),
        env={"KUBELLM_RUNTIME_DRAIN_SECONDS": "20"},
    )
    http = httpx.Client(base_url=server.base_url, timeout=30, trust_env=False)
    try:
        result: dict[str, httpx.Response] = {}

        def in_flight() -> None:
            result["reply"] = http.post(
                "/v1/completions", json={"model": "fake", "prompt": "x", "max_tokens": TOKENS}
            )

        worker = threading.Thread(target=in_flight)
        worker.start()
        gauge = 'llm_requests_in_progress{route="/v1/completions"} 1.0'
        wait_for(
            lambda: http.get("/metrics").text, lambda t: gauge in t, timeout=10, what="in flight"
        )

        os.kill(server.process.pid, signal.SIGTERM)

        def refused() -> bool:
            try:
                httpx.get(f"{server.base_url}/health", timeout=1, trust_env=False)
            except httpx.ConnectError:
                return True
            return False

        assert wait_for(refused, bool, timeout=10, what="new connections to be refused")
        worker.join(timeout=30)
        reply = result["reply"]
        assert reply.status_code == 200
        assert reply.json()["usage"]["completion_tokens"] == TOKENS
        # After draining, uvicorn re-raises the signal so the exit status says "terminated".
        assert server.process.popen.wait(timeout=30) in (0, -signal.SIGTERM)
        assert "Finished server process" in server.process.log.read_text()
    finally:
        http.close()
        supervisor.stop_all()
