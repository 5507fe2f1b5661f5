"""Admission before work: a 429 costs no tokenization, a long prompt is tokenized off the
event loop, a batch takes a slot per prompt and runs at once, a client that leaves stops its
non-stream generation, and the compatibility routes clamp their token ceiling (fake engine)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from kubellm_runtime.engine.base import Chunk, GenerationRequest
from kubellm_runtime.engine.fake import FakeEngine
from kubellm_runtime.ingress import EngineSlot, create_app
from kubellm_runtime.openai.service import INLINE_CHARS
from kubellm_runtime.settings import RuntimeSettings

CHAT = {"model": "base", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


class WatchedEngine(FakeEngine):
    """Records where it tokenizes; can hold tokenization and generation until released."""

    def __init__(self, **options: Any) -> None:
        super().__init__(model_name="base", max_model_len=64, **options)
        self.tokenized: list[str] = []
        self.release_tokenize = threading.Event()
        self.release_tokenize.set()
        self.hold_generation = asyncio.Event()
        self.hold_generation.set()
        self.active = 0

    def tokenize(self, text: str, special_tokens: bool) -> list[int]:
        self.tokenized.append(threading.current_thread().name)
        assert self.release_tokenize.wait(timeout=30)
        return [1, 2, 3]

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        self.active += 1
        try:
            await self.hold_generation.wait()
            async for chunk in super().generate(request):
                yield chunk
        finally:
            self.active -= 1


def client_for(engine: FakeEngine, max_inflight: int = 4) -> httpx.AsyncClient:
    app = create_app(EngineSlot(engine=engine), settings=RuntimeSettings(max_inflight=max_inflight))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r")


async def until(predicate: Any, deadline_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not predicate():
        assert loop.time() < end, "condition not met before the deadline"
        await asyncio.sleep(0.005)


async def test_a_request_refused_with_429_is_never_tokenized() -> None:
    engine = WatchedEngine()
    engine.hold_generation.clear()
    async with client_for(engine, max_inflight=1) as api:
        busy = asyncio.create_task(api.post("/v1/chat/completions", json=CHAT))
        await until(lambda: engine.active == 1)
        refused = await api.post("/v1/chat/completions", json=CHAT)
        assert refused.status_code == 429
        assert len(engine.tokenized) == 1  # only the admitted one
        engine.hold_generation.set()
        assert (await busy).status_code == 200


async def test_a_long_prompt_is_tokenized_off_the_event_loop() -> None:
    engine = WatchedEngine()
    engine.release_tokenize.clear()  # tokenization blocks until /health has answered
    long = {**CHAT, "messages": [{"role": "user", "content": "x " * INLINE_CHARS}]}
    async with client_for(engine) as api:
        slow = asyncio.create_task(api.post("/v1/chat/completions", json=long))
        await until(lambda: engine.tokenized)
        health = await api.get("/health")  # would hang if the loop were tokenizing
        assert health.status_code == 200
        engine.release_tokenize.set()
        assert (await slow).status_code == 200
    assert engine.tokenized[0].startswith("kubellm-tokenize")


async def test_a_batch_takes_one_slot_per_prompt_and_its_prompts_run_together() -> None:
    engine = WatchedEngine()
    engine.hold_generation.clear()
    body = {"model": "base", "prompt": ["a", "b", "c"], "max_tokens": 1}
    async with client_for(engine, max_inflight=4) as api:
        batch = asyncio.create_task(api.post("/v1/completions", json=body))
        await until(lambda: engine.active == 3)  # all three generate at once
        refused = await api.post("/v1/completions", json={**body, "prompt": ["d", "e"]})
        assert refused.status_code == 429  # 3 slots taken, 2 more do not fit
        engine.hold_generation.set()
        reply = await batch
        assert [c["index"] for c in reply.json()["choices"]] == [0, 1, 2]
        too_big = await api.post("/v1/completions", json={**body, "prompt": ["p"] * 5})
    assert too_big.status_code == 400
    assert too_big.json()["error"]["param"] == "prompt"


async def test_a_client_that_leaves_stops_its_non_stream_generation() -> None:
    """Raw ASGI: the body arrives, generation starts, then the client disconnects."""
    engine = WatchedEngine(token_delay=0.01)
    settings = RuntimeSettings(max_inflight=1)
    app = create_app(EngineSlot(engine=engine), settings=settings)
    gone = asyncio.Event()
    body = json.dumps({**CHAT, "max_tokens": 50}).encode()
    sent: list[dict[str, Any]] = []
    messages = iter([{"type": "http.request", "body": body, "more_body": False}])

    async def receive() -> dict[str, Any]:
        message = next(messages, None)
        if message is not None:
            return message
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "root_path": "",
        "scheme": "http",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"host", b"r")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
        "state": {},
    }
    call = asyncio.create_task(app(scope, receive, send))
    await until(lambda: engine.active == 1)
    gone.set()
    await asyncio.wait_for(call, timeout=10)
    assert engine.active == 0
    assert engine.started[-1].request_id in engine.aborted  # the engine stopped generating
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 499
    async with client_for(engine, max_inflight=1) as api:  # the slot is free again
        assert (await api.post("/v1/chat/completions", json=CHAT)).status_code == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/chat", {"prompt": "hi", "max_tokens": 10_000}),
        ("/generate", {"prompts": ["hi"], "max_tokens": 10_000}),
        ("/generate", {"job_id": "j", "meta": {"tokens_limit": 10_000}, "content": "hi"}),
    ],
)
async def test_the_compatibility_routes_clamp_the_token_ceiling_to_the_context_left(
    path: str, body: dict[str, Any]
) -> None:
    engine = WatchedEngine()
    async with client_for(engine) as api:
        reply = await api.post(path, json=body)
        assert reply.status_code == 200
        assert engine.started[-1].sampling.max_tokens == 64 - 3  # the context left
        openai = await api.post("/v1/chat/completions", json={**CHAT, "max_tokens": 10_000})
    assert openai.status_code == 400  # the OpenAI routes keep their 400
    assert openai.json()["error"]["code"] == "context_length_exceeded"


async def test_a_stream_cut_by_the_request_timeout_ends_with_an_error_frame_counted_504() -> None:
    from .test_metrics import sample

    engine = FakeEngine(model_name="base", token_delay=0.02)
    settings = RuntimeSettings(request_timeout_s=0.2)
    app = create_app(EngineSlot(engine=engine), settings=settings)
    route = "/v1/chat/completions"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        before = await sample(c, "llm_requests_total", route=route, status="504")
        reply = await c.post(route, json={**CHAT, "max_tokens": 1000, "stream": True})
        frames = [line for line in reply.text.splitlines() if line.startswith("data: ")]
        after = await sample(c, "llm_requests_total", route=route, status="504")
    assert reply.status_code == 200  # the stream had begun: the status line was sent
    error = json.loads(frames[-1].removeprefix("data: "))["error"]
    assert (error["type"], error["code"]) == ("timeout", "timeout")
    assert "data: [DONE]" not in frames
    assert after == before + 1
