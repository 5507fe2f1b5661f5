"""OpenAI options through the official client (in process, fake engine): logprobs in both
shapes, response_format, penalties and logit_bias reach the engine; content parts; every
OpenAI parameter the runtime does not implement is a 400 naming it, never ignored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from kubellm_runtime.engine.base import RequestRejectedError, Sampling
from kubellm_runtime.engine.fake import FakeEngine
from kubellm_runtime.ingress import EngineSlot, create_app

MESSAGES: Any = [{"role": "user", "content": "hi"}]


class PickyEngine(FakeEngine):
    def supports(self, sampling: Sampling) -> None:
        if sampling.logprobs is not None:
            raise RequestRejectedError("logprobs: not supported by this engine", "logprobs")


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine(model_name="base")


@pytest.fixture
async def client(engine: FakeEngine) -> AsyncIterator[openai.AsyncOpenAI]:
    app = create_app(EngineSlot(engine=engine))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://r") as http:
        yield openai.AsyncOpenAI(
            base_url="http://r/v1", api_key="x", http_client=http, max_retries=0
        )


async def test_chat_logprobs_with_top_alternatives(client: openai.AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(
        model="base", messages=MESSAGES, max_tokens=3, logprobs=True, top_logprobs=2
    )
    logprobs = reply.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.content is not None
    assert [t.token for t in logprobs.content] == ["lorem", " ipsum", " dolor"]
    first = logprobs.content[0]
    assert first.logprob == -1.0
    assert first.bytes == list(b"lorem")
    assert [t.token for t in first.top_logprobs] == ["lorem", "lorem"][:2]
    assert len(first.top_logprobs) == 2


async def test_chat_stream_chunks_carry_their_tokens_logprobs(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="base", messages=MESSAGES, max_tokens=2, logprobs=True, stream=True
    )
    tokens = [
        t.token
        async for chunk in stream
        for choice in chunk.choices
        if choice.logprobs and choice.logprobs.content
        for t in choice.logprobs.content
    ]
    assert tokens == ["lorem", " ipsum"]


async def test_completion_logprobs_in_the_legacy_shape(client: openai.AsyncOpenAI) -> None:
    reply = await client.completions.create(model="base", prompt="x", max_tokens=2, logprobs=1)
    logprobs = reply.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.tokens == ["lorem", " ipsum"]
    assert logprobs.token_logprobs == [-1.0, -1.0]
    assert logprobs.text_offset == [0, 5]
    assert logprobs.top_logprobs == [{"lorem": -1.0}, {" ipsum": -1.0}]


async def test_no_logprobs_unless_asked(client: openai.AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(model="base", messages=MESSAGES, max_tokens=1)
    assert reply.choices[0].logprobs is None


@pytest.mark.parametrize(
    ("response_format", "kind", "schema"),
    [
        ({"type": "json_object"}, "json_object", None),
        (
            {
                "type": "json_schema",
                "json_schema": {"name": "city", "schema": {"type": "object"}, "strict": True},
            },
            "json_schema",
            '{"type": "object"}',
        ),
    ],
)
async def test_response_format_reaches_the_engine(
    client: openai.AsyncOpenAI,
    engine: FakeEngine,
    response_format: Any,
    kind: str,
    schema: str | None,
) -> None:
    await client.chat.completions.create(
        model="base", messages=MESSAGES, max_tokens=1, response_format=response_format
    )
    structured = engine.started[-1].sampling.structured
    assert structured is not None
    assert (structured.kind, structured.schema) == (kind, schema)


async def test_penalties_and_logit_bias_reach_the_engine(
    client: openai.AsyncOpenAI, engine: FakeEngine
) -> None:
    await client.chat.completions.create(
        model="base",
        messages=MESSAGES,
        max_tokens=1,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        logit_bias={"42": -100},
    )
    sampling = engine.started[-1].sampling
    assert (sampling.presence_penalty, sampling.frequency_penalty) == (0.5, -0.5)
    assert sampling.logit_bias == ((42, -100.0),)


async def test_content_parts_are_text(client: openai.AsyncOpenAI, engine: FakeEngine) -> None:
    parts: Any = [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]
    await client.chat.completions.create(
        model="base", messages=[{"role": "user", "content": parts}], max_tokens=1
    )
    assert "one\ntwo" in engine.started[-1].prompt


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"response_format": {"type": "json_schema"}}, "response_format"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"logit_bias": {"abc": 1}}, "logit_bias"),
        ({"logit_bias": {"1": 101}}, "logit_bias"),
        ({"presence_penalty": 3}, "presence_penalty"),
    ],
)
async def test_chat_options_it_cannot_honour_are_400s_naming_them(
    client: openai.AsyncOpenAI, engine: FakeEngine, options: dict[str, Any], param: str
) -> None:
    body = {"model": "base", "messages": MESSAGES, "max_tokens": 1, **options}
    with pytest.raises(openai.BadRequestError) as refused:
        await client.chat.completions.create(**body)
    error = refused.value.body
    assert isinstance(error, dict)
    assert str(error.get("param") or "").startswith(param)
    assert engine.started == []


async def test_tools_with_tool_choice_none_are_a_plain_chat(client: openai.AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(
        model="base",
        messages=MESSAGES,
        max_tokens=1,
        tools=[{"type": "function", "function": {"name": "f"}}],
        tool_choice="none",
    )
    assert reply.choices[0].message.content == "lorem"


@pytest.mark.parametrize(
    ("options", "param"),
    [({"echo": True}, "echo"), ({"suffix": "x"}, "suffix"), ({"best_of": 2}, "best_of")],
)
async def test_completion_options_it_does_not_implement_are_400s(
    client: openai.AsyncOpenAI, options: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await client.completions.create(model="base", prompt="x", max_tokens=1, **options)
    assert isinstance(refused.value.body, dict)
    assert refused.value.body.get("param") == param


async def test_an_option_the_engine_cannot_honour_is_refused_before_a_stream_starts() -> None:
    app = create_app(EngineSlot(engine=PickyEngine(model_name="base")))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        body = {"model": "base", "messages": MESSAGES, "logprobs": True, "stream": True}
        reply = await c.post("/v1/chat/completions", json=body)
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "logprobs"
