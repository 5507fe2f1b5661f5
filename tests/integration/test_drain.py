"""Graceful shutdown: on SIGTERM the runtime stops accepting and finishes what is in flight."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from kubellm_dev import netns
from kubellm_dev.waiting import wait_for

from .conftest import VLLM_ARGS, _unavailable, serve_locally

pytestmark = pytest.mark.integration
# Streams far larger than every buffer between server and client (a 4 KiB receive buffer here,
# the server's socket and transport buffers): while the client does not read, the server cannot
# finish the response, so the request is in flight when SIGTERM comes, by construction.
REQUESTS: dict[str, dict[str, Any]] = {
    "fake": {"model": "fake", "prompt": "x", "max_tokens": 2000, "n": 8, "stream": True},
    "vllm": {"model": "tiny", "prompt": "Hi", "max_tokens": 250, "n": 16, "seed": 1,
             "stream": True},
}  # fmt: skip
LARGER_THAN_BUFFERS = 256 * 1024
RECEIVE_BUFFER = 4096


class SlowReader:
    """An HTTP/1.1 client on a raw socket that reads only when told to (TCP backpressure)."""

    def __init__(self, base_url: str) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        self.sock.settimeout(60)
        self.sock.connect((host, int(port)))
        self.received = b""

    def post(self, path: str, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
        )
        self.sock.sendall(head.encode() + data)

    def read_until(self, marker: bytes) -> None:
        while marker not in self.received:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError(
                    f"connection closed before {marker!r}; received {self.received[:600]!r}"
                )
            self.received += chunk

    def read_to_end(self) -> None:
        while chunk := self.sock.recv(65536):
            self.received += chunk


@pytest.mark.parametrize("engine", ["fake", "vllm"])
def test_sigterm_drains_in_flight_requests_and_refuses_new_ones(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if engine == "fake":
        model, extra = "fake", ("--engine", "fake")
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
    try:
        client = SlowReader(server.base_url)
        client.post("/v1/completions", REQUESTS[engine])
        client.read_until(b"data: ")  # it streams; from here on the client stops reading

        os.kill(server.process.pid, signal.SIGTERM)

        def refused() -> bool:
            try:
                httpx.get(f"{server.base_url}/health", timeout=1, trust_env=False)
            # Refused at connect, or accepted into the listen backlog just before uvicorn
            # closed its socket and then reset by the kernel with no response: either way the
            # request was not served (the lines below prove the server itself still runs).
            except (httpx.ConnectError, httpx.RemoteProtocolError):
                return True
            return False

        assert wait_for(refused, bool, timeout=10, what="new connections to be refused")
        assert server.process.popen.poll() is None  # still draining: the stream is unfinished

        client.read_to_end()
        head, _, stream = client.received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert len(stream) > LARGER_THAN_BUFFERS  # so it could not have been sent up front
        assert stream.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n")  # the whole chunked stream
        reasons = re.findall(rb'"finish_reason":\s*"(\w+)"', stream)
        assert len(reasons) == REQUESTS[engine]["n"]  # every choice ran to its end
        assert set(reasons) <= {b"length", b"stop"}
        # After draining, uvicorn re-raises the signal so the exit status says "terminated".
        assert server.process.popen.wait(timeout=30) in (0, -signal.SIGTERM)
        assert "Finished server process" in server.process.log.read_text()
    finally:
        supervisor.stop_all()
