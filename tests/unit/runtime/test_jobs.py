"""job_id and Idempotency-Key: bound to route and body, owned by the store (fake engine)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from kubellm_runtime.engine.base import Chunk, EngineError, GenerationRequest
from kubellm_runtime.engine.fake import FakeEngine
from kubellm_runtime.ingress import EngineSlot, create_app

JOB = {"job_id": "job-1", "meta": {"tokens_limit": 20}, "content": "hello"}
CHAT = {"model": "base", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}


class FlakyEngine(FakeEngine):
    """Fails its first generation, as an engine that died and came back would."""

    failures = 1

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        if self.failures:
            self.failures -= 1
            raise EngineError("engine died")
        async for chunk in super().generate(request):
            yield chunk


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine(model_name="base", token_delay=0.005)


@pytest.fixture
async def api(engine: FakeEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(EngineSlot(engine=engine))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        yield c


async def until(predicate: object, deadline_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not predicate():  # type: ignore[operator]
        assert loop.time() < end, "condition not met before the deadline"
        await asyncio.sleep(0.005)


async def test_a_job_id_reused_with_a_different_body_is_a_409_naming_it(
    api: httpx.AsyncClient, engine: FakeEngine
) -> None:
    assert (await api.post("/generate", json=JOB)).status_code == 200
    reply = await api.post("/generate", json={**JOB, "content": "another user's prompt"})
    assert reply.status_code == 409
    error = reply.json()["error"]
    assert (error["param"], error["code"]) == ("job_id", "idempotency_conflict")
    assert "job-1" in error["message"]
    assert len(engine.started) == 1


async def test_a_job_id_reused_on_another_route_is_a_409_naming_the_route(
    api: httpx.AsyncClient,
) -> None:
    assert (await api.post("/generate", json=JOB)).status_code == 200
    chat = {"job_id": "job-1", "messages": [{"role": "user", "content": "hello"}]}
    reply = await api.post("/chat_completion", json=chat)
    assert reply.status_code == 409
    assert "/generate" in reply.json()["error"]["message"]


async def test_the_first_caller_leaving_does_not_fail_the_duplicates(
    api: httpx.AsyncClient, engine: FakeEngine
) -> None:
    first = asyncio.create_task(api.post("/generate", json=JOB))
    await until(lambda: len(engine.started) == 1)
    duplicate = asyncio.create_task(api.post("/generate", json=JOB))
    first.cancel()  # the first client goes away mid-generation
    reply = await duplicate
    assert reply.status_code == 200
    assert reply.json()["content"].startswith("lorem ipsum")
    # A retry after the dropped connection finds the result: nothing generated again.
    again = await api.post("/generate", json=JOB)
    assert again.json() == reply.json()
    assert len(engine.started) == 1


async def test_a_failed_generation_is_not_remembered() -> None:
    engine = FlakyEngine(model_name="base")
    app = create_app(EngineSlot(engine=engine))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://r") as api:
        assert (await api.post("/generate", json=JOB)).status_code == 503
        retry = await api.post("/generate", json=JOB)
    assert retry.status_code == 200
    assert len(engine.started) == 1  # the retry generated (the failure was not stored)


async def test_idempotency_key_replays_a_chat_completion_generated_once(
    api: httpx.AsyncClient, engine: FakeEngine
) -> None:
    headers = {"Idempotency-Key": "order-77"}
    first, again = [
        await api.post("/v1/chat/completions", json=CHAT, headers=headers) for _ in range(2)
    ]
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()  # same id, same text
    assert len(engine.started) == 1
    other = await api.post("/v1/chat/completions", json={**CHAT, "max_tokens": 2}, headers=headers)
    assert other.status_code == 409
    assert other.json()["error"]["param"] == "Idempotency-Key"


async def test_idempotency_key_on_completions_and_without_a_key_each_request_generates(
    api: httpx.AsyncClient, engine: FakeEngine
) -> None:
    body = {"model": "base", "prompt": "x", "max_tokens": 2}
    keyed = [
        await api.post("/v1/completions", json=body, headers={"Idempotency-Key": "k"})
        for _ in range(2)
    ]
    assert keyed[0].json() == keyed[1].json()
    plain = [await api.post("/v1/completions", json=body) for _ in range(2)]
    assert plain[0].json()["id"] != plain[1].json()["id"]
    assert len(engine.started) == 3


@pytest.mark.parametrize(
    ("key", "body"),
    [
        ("x" * 256, CHAT),
        ("has space", CHAT),
        ("ok", {**CHAT, "stream": True}),
    ],
)
async def test_a_bad_idempotency_key_or_one_on_a_stream_is_a_400(
    api: httpx.AsyncClient, engine: FakeEngine, key: str, body: dict[str, object]
) -> None:
    reply = await api.post("/v1/chat/completions", json=body, headers={"Idempotency-Key": key})
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "Idempotency-Key"
    assert engine.started == []
