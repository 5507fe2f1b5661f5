"""JSON log lines carry the request id, model, adapter and job_id of the request they belong to."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from kubellm_runtime import logs
from kubellm_runtime.engine.fake import FakeEngine
from kubellm_runtime.ingress import EngineSlot, create_app
from kubellm_runtime.settings import RuntimeSettings


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    logs.configure("json", "INFO", stream)
    yield stream
    logs.configure("console", "INFO")


@pytest.fixture
async def api(output: io.StringIO) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        EngineSlot(engine=FakeEngine("base", adapters=["sql"])), settings=RuntimeSettings()
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://r"
    ) as client:
        yield client


def request_lines(text: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "request"]


async def test_a_request_line_names_request_model_and_adapter(
    api: httpx.AsyncClient, output: io.StringIO
) -> None:
    body = {"model": "sql", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
    reply = await api.post("/v1/chat/completions", json=body, headers={"X-Request-ID": "abc-1"})
    assert reply.headers["x-request-id"] == "abc-1"
    (line,) = request_lines(output.getvalue())
    assert line["request_id"] == "abc-1"
    assert (line["model"], line["adapter"]) == ("base", "sql")
    assert (line["status"], line["path"], line["level"]) == (200, "/v1/chat/completions", "info")
    assert line["duration_ms"] >= 0
    assert "timestamp" in line


async def test_a_streamed_request_is_logged_when_it_ends(
    api: httpx.AsyncClient, output: io.StringIO
) -> None:
    body = {"model": "base", "prompt": "x", "max_tokens": 3, "stream": True}
    async with api.stream("POST", "/v1/completions", json=body) as reply:
        request_id = reply.headers["x-request-id"]
        assert len(request_id) == 32  # generated when the client sends none
        chunks = [line async for line in reply.aiter_lines() if line]
    assert chunks[-1] == "data: [DONE]"
    (line,) = request_lines(output.getvalue())
    assert (line["request_id"], line["model"]) == (request_id, "base")
    assert "adapter" not in line


async def test_a_job_keyed_request_line_carries_the_job_id(
    api: httpx.AsyncClient, output: io.StringIO
) -> None:
    body = {"job_id": "job-42", "meta": {"tokens_limit": 3}, "content": "hello"}
    assert (await api.post("/generate", json=body)).status_code == 200
    (line,) = request_lines(output.getvalue())
    assert (line["job_id"], line["model"]) == ("job-42", "base")


async def test_a_rejected_request_is_logged_with_its_status(
    api: httpx.AsyncClient, output: io.StringIO
) -> None:
    body = {"model": "nope", "messages": [{"role": "user", "content": "hi"}]}
    assert (await api.post("/v1/chat/completions", json=body)).status_code == 404
    (line,) = request_lines(output.getvalue())
    assert (line["status"], line["model"]) == (404, "base")
