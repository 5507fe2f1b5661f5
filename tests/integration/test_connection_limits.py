"""Local mode's connection limits on real uvicorn (fake engine): a request head must arrive
in time, a stalled body is a 408, and a stream the drain deadline cuts ends with an error
frame, counted as a 503."""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import RuntimeServer, serve_locally
from .test_drain import SlowReader

pytestmark = pytest.mark.integration
FAKE = ("--engine", "fake", "--fake-token-delay", "0.05")
HEAD_TIMEOUT_S = 1
DEADLINE_S = 20.0


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeServer]:
    supervisor, server = serve_locally(
        "fake",
        "fake",
        tmp_path_factory.mktemp("limits-logs"),
        FAKE,
        env={
            "KUBELLM_RUNTIME_HEADER_TIMEOUT_S": str(HEAD_TIMEOUT_S),
            "KUBELLM_RUNTIME_BODY_TIMEOUT_S": "1",
        },
    )
    try:
        yield server
    finally:
        supervisor.stop_all()


def connect(server: RuntimeServer) -> socket.socket:
    host, port = server.base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=DEADLINE_S)
    return sock


def closed_by_server(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (recv's timeout is the deadline)."""
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


def test_connections_that_never_finish_a_request_head_are_closed(runtime: RuntimeServer) -> None:
    silent = [connect(runtime) for _ in range(20)]
    partial = [connect(runtime) for _ in range(20)]
    for sock in partial:
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")  # and never the rest
    for sock in silent + partial:
        assert closed_by_server(sock) == b""  # closed, not answered
        sock.close()
    # The server still answers whole requests.
    with connect(runtime) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert closed_by_server(sock).startswith(b"HTTP/1.1 200")


def test_a_body_that_stalls_gets_a_408(runtime: RuntimeServer) -> None:
    with connect(runtime) as sock:
        sock.sendall(
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\nConnection: close\r\n\r\n{"model": '
        )
        reply = closed_by_server(sock)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert json.loads(body)["error"]["code"] == "timeout"


def test_a_stream_cut_by_the_drain_deadline_ends_with_an_error_frame(tmp_path: Path) -> None:
    supervisor, server = serve_locally(
        "fake", "fake", tmp_path, FAKE, env={"KUBELLM_RUNTIME_DRAIN_SECONDS": "3"}
    )
    try:
        client = SlowReader(server.base_url)
        body = {"model": "fake", "prompt": "x", "max_tokens": 2000, "stream": True}
        client.post("/v1/completions", body)
        client.read_until(b"data: ")
        os.kill(server.process.pid, signal.SIGTERM)
        client.read_to_end()
        frames = [f for f in client.received.split(b"\n\n") if b"data: " in f]
        last = json.loads(frames[-1].split(b"data: ", 1)[1])
        assert last["error"]["code"] == "shutting_down"
        assert b"[DONE]" not in client.received
        assert server.process.popen.wait(timeout=30) in (0, -signal.SIGTERM)
        logged = [json.loads(line) for line in server.process.log.read_text().splitlines()
                  if line.startswith("{") and '"path": "/v1/completions"' in line]  # fmt: skip
        assert [entry["status"] for entry in logged] == [503]
    finally:
        supervisor.stop_all()
