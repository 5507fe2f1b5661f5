"""Graceful shutdown: on SIGTERM the runtime stops accepting and finishes what is in flight."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from kubellm_dev import netns
from kubellm_dev.waiting import wait_for

from .conftest import VLLM_ARGS, _unavailable, serve_locally

pytestmark = pytest.mark.integration
TOKEN_DELAY = 0.05  # fake engine: the in-flight request takes ~2 s
# Fake engine: 40 tokens. vLLM on the tiny model: 4 sampled choices of up to 240 tokens, about
# a second of engine work on two cores, so the request is still running when SIGTERM comes.
REQUESTS: dict[str, dict[str, Any]] = {
    "fake": {"model": "fake", "prompt": "x", "max_tokens": 40},
    "vllm": {"model": "tiny", "prompt": "Hi", "max_tokens": 240, "n": 4, "seed": 1},
}


@pytest.mark.parametrize("engine", ["fake", "vllm"])
def test_sigterm_drains_in_flight_requests_and_refuses_new_ones(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if engine == "fake":
        model, extra = "fake", ("--engine", "fake", "--fake-token-delay", str(TOKEN_DELAY))
    else:
        if not netns.loopback_only():
            _unavailable("vLLM runs only in a loopback-only namespace here: use `make test`")
        model, extra = (
            request.getfixturevalue("tiny_model_dir"),
            ("--max-model-len", "256", *VLLM_ARGS),
        )
    supervisor, server = serve_locally(
        model,
        REQUESTS[engine]["model"],
        tmp_path,
        extra,
        env={"KUBELLM_RUNTIME_DRAIN_SECONDS": "60"},
    )
    http = httpx.Client(base_url=server.base_url, timeout=60, trust_env=False)
    try:
        result: dict[str, Any] = {}

        def in_flight() -> None:
            result["reply"] = http.post("/v1/completions", json=REQUESTS[engine])
            result["done"] = time.monotonic()

        worker = threading.Thread(target=in_flight)
        worker.start()
        gauge = 'llm_requests_in_progress{route="/v1/completions"} 1.0'
        wait_for(
            lambda: http.get("/metrics").text, lambda t: gauge in t, timeout=10, what="in flight"
        )

        os.kill(server.process.pid, signal.SIGTERM)
        terminated = time.monotonic()

        def refused() -> bool:
            try:
                httpx.get(f"{server.base_url}/health", timeout=1, trust_env=False)
            except httpx.ConnectError:
                return True
            return False

        assert wait_for(refused, bool, timeout=10, what="new connections to be refused")
        worker.join(timeout=60)
        reply = result["reply"]
        assert result["done"] > terminated  # it really was in flight when SIGTERM came
        assert reply.status_code == 200
        body = reply.json()
        assert all(choice["finish_reason"] in ("length", "stop") for choice in body["choices"])
        if engine == "fake":
            assert body["usage"]["completion_tokens"] == REQUESTS["fake"]["max_tokens"]
        # After draining, uvicorn re-raises the signal so the exit status says "terminated".
        assert server.process.popen.wait(timeout=30) in (0, -signal.SIGTERM)
        assert "Finished server process" in server.process.log.read_text()
    finally:
        http.close()
        supervisor.stop_all()
