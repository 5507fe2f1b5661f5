"""Client-caused errors are 400s in OpenAI's shape naming the field; engine failures are 503s."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from kubellm_runtime.engine.base import Chunk, EngineError, GenerationRequest, RequestRejectedError
from kubellm_runtime.engine.fake import FakeEngine
from kubellm_runtime.ingress import EngineSlot, create_app
from kubellm_runtime.settings import RuntimeSettings

from .test_metrics import sample
from .test_reliability import CHAT, client_for

COMPLETION = {"model": "fake-model", "prompt": "hi", "max_tokens": 3}
SURROGATE = b'"a\\ud800b"'  # valid JSON, not valid Unicode


def raw(body: dict[str, Any], field: str) -> bytes:
    """``body`` as JSON with the string ``field`` (a dotted path) replaced by a lone surrogate."""
    marker = "@@SURROGATE@@"
    target: Any = body
    *parents, last = field.split(".")
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if isinstance(target, list):
        target[int(last)] = marker
    else:
        target[last] = marker
    import json

    return json.dumps(body).replace(f'"{marker}"', SURROGATE.decode()).encode()


def assert_client_error(reply: httpx.Response, mentions: str) -> None:
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert mentions in error["message"] or mentions == error.get("param"), error


@pytest.mark.parametrize(
    ("route", "body", "mentions"),
    [
        ("/v1/completions", {**COMPLETION, "prompt": ""}, "prompt"),
        ("/v1/completions", {**COMPLETION, "prompt": ["ok", ""]}, "prompt"),
        ("/v1/completions", {**COMPLETION, "stop": ""}, "stop"),
        ("/v1/chat/completions", {**CHAT, "stop": ["x", ""]}, "stop"),
        ("/v1/chat/completions", {**CHAT, "n": 16, "temperature": 0}, "n"),
        ("/v1/chat/completions", {**CHAT, "seed": 2**80}, "seed"),
        ("/generate", {"prompts": ["a", ""]}, "prompts"),
        ("/generate", {"job_id": "j", "content": "x", "meta": {"stop_words": [""]}}, "stop_words"),
    ],
)
async def test_a_bad_value_is_a_400_naming_its_field(
    route: str, body: dict[str, Any], mentions: str
) -> None:
    async with client_for(FakeEngine()) as client:
        assert_client_error(await client.post(route, json=body), mentions)


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("/v1/chat/completions", CHAT, "messages.0.content"),
        ("/v1/completions", COMPLETION, "prompt"),
        ("/v1/completions", {**COMPLETION, "stop": ["a"]}, "stop.0"),
        ("/chat", {"prompt": "x", "adapter": "a"}, "adapter"),
        ("/generate", {"job_id": "j", "content": "x", "meta": {"model": "m"}}, "meta.model"),
        ("/v1/chat/completions", {**CHAT, "model": "fake-model"}, "model"),
    ],
)
async def test_an_unpaired_surrogate_is_a_400_naming_where_it_is(
    route: str, body: dict[str, Any], field: str
) -> None:
    import copy

    content = raw(copy.deepcopy(body), field)
    async with client_for(FakeEngine()) as client:
        reply = await client.post(
            route, content=content, headers={"Content-Type": "application/json"}
        )
        assert_client_error(reply, field)
        assert (await client.get("/health")).status_code == 200


class Failing(FakeEngine):
    """An engine that refuses or fails every generation."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        raise self.error
        yield  # pragma: no cover - makes this an async generator


async def test_a_request_the_engine_rejects_is_a_400_with_its_param() -> None:
    engine = Failing(RequestRejectedError("max_tokens is too large", param="max_tokens"))
    async with client_for(engine) as client:
        reply = await client.post("/v1/chat/completions", json=CHAT)
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "max_tokens"


async def test_an_engine_failure_is_a_counted_503_with_retry_after_and_no_internals() -> None:
    secret = "Traceback /opt/secret/path/engine.py"
    engine = Failing(EngineError(secret))
    app = create_app(EngineSlot(engine=engine), settings=RuntimeSettings(retry_after_s=2))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://r") as client:
        errors = await sample(client, "llm_engine_errors_total", model="fake-model")
        reply = await client.post("/v1/chat/completions", json=CHAT)
        assert reply.status_code == 503
        assert reply.headers["retry-after"] == "2"
        assert "secret" not in reply.text
        assert reply.json()["error"]["type"] == "service_unavailable"
        assert await sample(client, "llm_engine_errors_total", model="fake-model") == errors + 1


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("/v1/chat/completions", {**CHAT, "stream": "yes"}, "stream"),
        ("/v1/chat/completions", {**CHAT, "max_tokens": "4"}, "max_tokens"),
        ("/v1/completions", {**COMPLETION, "temperature": "0.5"}, "temperature"),
        ("/v1/completions", {**COMPLETION, "n": 2.0}, "n"),
        ("/chat", {"prompt": "x", "max_tokens": "4"}, "max_tokens"),
        (
            "/generate",
            {"job_id": "j", "content": "x", "meta": {"tokens_limit": "8"}},
            "tokens_limit",
        ),
    ],
)
async def test_a_value_of_the_wrong_type_is_refused_not_coerced(
    route: str, body: dict[str, Any], field: str
) -> None:
    async with client_for(FakeEngine()) as client:
        reply = await client.post(route, json=body)
    assert reply.status_code == 400, reply.text
    assert field in reply.json()["error"]["message"], reply.json()


async def test_an_integer_temperature_is_still_a_number() -> None:
    async with client_for(FakeEngine()) as client:
        reply = await client.post("/v1/chat/completions", json={**CHAT, "temperature": 1})
    assert reply.status_code == 200


class FailingMidStream(FakeEngine):
    """Sends one chunk, then fails (a replica losing its engine while streaming)."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        yield Chunk(0, "Hel", 1)
        raise self.error


async def test_an_engine_failure_mid_stream_ends_it_with_a_503_frame_and_no_internals() -> None:
    secret = "Traceback /opt/secret/path/engine.py"
    app = create_app(EngineSlot(engine=FailingMidStream(EngineError(secret))))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://r") as client:
        errors = await sample(client, "llm_engine_errors_total", model="fake-model")
        failed = await sample(
            client, "llm_requests_total", route="/v1/chat/completions", status="503"
        )
        reply = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
        assert reply.status_code == 200  # the stream had started
        frames = [line[6:] for line in reply.text.splitlines() if line.startswith("data: ")]
        assert json.loads(frames[0])["choices"][0]["delta"].get("role") == "assistant"
        last = json.loads(frames[-1])
        assert last["error"]["type"] == "service_unavailable"
        assert "secret" not in reply.text
        assert await sample(client, "llm_engine_errors_total", model="fake-model") == errors + 1
        after = await sample(
            client, "llm_requests_total", route="/v1/chat/completions", status="503"
        )
        assert after == failed + 1
