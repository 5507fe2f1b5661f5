"""The OpenAI-compatible API over the fake engine: shapes, streaming, validation, errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from kubellm_runtime.engine.fake import FakeEngine
from kubellm_runtime.ingress import EngineSlot, create_app


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine(model_name="tiny", max_model_len=64, adapters=["sql"])


@pytest.fixture
async def api(engine: FakeEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(EngineSlot(engine=engine))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://runtime") as client:
        yield client


def chat_body(**overrides: Any) -> dict[str, Any]:
    return {
        "model": "tiny",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 3,
        **overrides,
    }


def sse_events(text: str) -> list[Any]:
    events = [
        line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data: ")
    ]
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


async def test_chat_completion_has_choices_and_usage(api: httpx.AsyncClient) -> None:
    reply = await api.post("/v1/chat/completions", json=chat_body())
    assert reply.status_code == 200
    body = reply.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "lorem ipsum dolor"}
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 3


async def test_n_gives_that_many_choices(api: httpx.AsyncClient) -> None:
    body = (await api.post("/v1/chat/completions", json=chat_body(n=2))).json()
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert body["usage"]["completion_tokens"] == 6


async def test_stop_sequences_end_the_text_before_the_stop(api: httpx.AsyncClient) -> None:
    body = (
        await api.post("/v1/chat/completions", json=chat_body(max_tokens=8, stop=["dolor"]))
    ).json()
    assert body["choices"][0]["message"]["content"] == "lorem ipsum "
    assert body["choices"][0]["finish_reason"] == "stop"


async def test_streaming_chat_sends_role_deltas_usage_and_done(api: httpx.AsyncClient) -> None:
    reply = await api.post(
        "/v1/chat/completions",
        json=chat_body(stream=True, stream_options={"include_usage": True}),
    )
    assert reply.headers["content-type"].startswith("text/event-stream")
    events = sse_events(reply.text)
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
    assert text == "lorem ipsum dolor"
    assert events[-2]["choices"][0]["finish_reason"] == "length"
    assert events[-1]["usage"]["completion_tokens"] == 3


async def test_completions_accept_a_batch_of_prompts(api: httpx.AsyncClient) -> None:
    reply = await api.post(
        "/v1/completions", json={"model": "tiny", "prompt": ["a", "b c"], "max_tokens": 2}
    )
    body = reply.json()
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert body["usage"]["prompt_tokens"] == 5  # each prompt's words and its BOS


async def test_prompts_are_tokenized_once_and_the_engine_gets_the_ids(
    api: httpx.AsyncClient, engine: FakeEngine
) -> None:
    """Completions get special tokens (BOS); a rendered chat prompt does not (its template
    wrote them already), as with vLLM's own server."""
    await api.post("/v1/completions", json={"model": "tiny", "prompt": "a b", "max_tokens": 1})
    chat = {"model": "tiny", "messages": [{"role": "user", "content": "a b"}], "max_tokens": 1}
    reply = await api.post("/v1/chat/completions", json=chat)
    completion, rendered = engine.started[-2:]
    assert completion.prompt_token_ids == (0, 1, 2)
    assert rendered.prompt_token_ids[0] != 0
    assert len(rendered.prompt_token_ids) == reply.json()["usage"]["prompt_tokens"]


async def test_models_list_the_base_model_and_adapters(api: httpx.AsyncClient) -> None:
    body = (await api.get("/v1/models")).json()
    assert [(m["id"], m.get("parent")) for m in body["data"]] == [("tiny", None), ("sql", "tiny")]


async def test_a_request_naming_an_adapter_uses_it(
    api: httpx.AsyncClient, engine: FakeEngine
) -> None:
    assert (await api.post("/v1/chat/completions", json=chat_body(model="sql"))).status_code == 200
    assert engine.started[-1].adapter == "sql"


@pytest.mark.parametrize(
    ("body", "status", "param", "fragment"),
    [
        (chat_body(temperature=-1), 400, "temperature", "greater than or equal to 0"),
        (chat_body(messages=[]), 400, "messages", "at least 1 item"),
        (chat_body(max_tokens=1000), 400, "max_tokens", "maximum context length is 64"),
        (chat_body(model="nope"), 404, "model", "The model `nope` does not exist"),
        (chat_body(stop=["a", "b", "c", "d", "e"]), 400, "stop", "at most 4 stop sequences"),
        ({"messages": [{"role": "user", "content": "x"}]}, 400, "model", "Field required"),
    ],
)
async def test_bad_requests_get_clear_openai_errors(
    api: httpx.AsyncClient, body: dict[str, Any], status: int, param: str, fragment: str
) -> None:
    reply = await api.post("/v1/chat/completions", json=body)
    assert reply.status_code == status
    error = reply.json()["error"]
    assert error["param"] == param
    assert fragment in error["message"]


async def test_invalid_json_is_a_400(api: httpx.AsyncClient) -> None:
    reply = await api.post(
        "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "invalid_json"


async def test_liveness_and_readiness() -> None:
    slot = EngineSlot()
    app = create_app(slot)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://r"
    ) as client:
        assert (await client.get("/health")).status_code == 200
        loading = await client.get("/ready")
        assert loading.status_code == 503
        busy = await client.post("/v1/chat/completions", json=chat_body())
        assert busy.status_code == 503
        assert busy.headers["retry-after"]
        slot.failure = "no such directory: /models/x"
        failed = await client.get("/ready")
        assert "no such directory" in failed.json()["reason"]
        slot.failure, slot.engine = None, FakeEngine()
        assert (await client.get("/ready")).json()["status"] == "ready"
