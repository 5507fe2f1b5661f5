"""Tool calls (fake engine, official client in process): required and named functions are
constrained JSON read back as calls; auto needs the deployment's parser; what cannot be
honoured is a 400 naming the parameter."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from kubellm_runtime.engine.base import Chunk, GenerationRequest
from kubellm_runtime.engine.fake import FakeEngine
from kubellm_runtime.ingress import EngineSlot, create_app

WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME: Any = {"type": "function", "function": {"name": "get_time"}}
MESSAGES: Any = [{"role": "user", "content": "Weather in Paris?"}]


class ScriptedEngine(FakeEngine):
    """Answers every request with ``text`` (what a model constrained to JSON would say)."""

    def __init__(self, text: str, **options: Any) -> None:
        super().__init__(model_name="base", **options)
        self.text = text

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        self.started.append(request)
        pieces = [self.text[i : i + 4] for i in range(0, len(self.text), 4)]  # token-sized
        for n, piece in enumerate(pieces, 1):
            yield Chunk(0, piece, n, "stop" if n == len(pieces) else None)


async def client_for(engine: FakeEngine) -> tuple[openai.AsyncOpenAI, httpx.AsyncClient]:
    app = create_app(EngineSlot(engine=engine))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r")
    return openai.AsyncOpenAI(base_url="http://r/v1", api_key="x", http_client=http), http


async def test_required_tools_constrain_the_output_and_read_it_back_as_calls() -> None:
    engine = ScriptedEngine('[{"name": "get_weather", "parameters": {"city": "Paris"}}]')
    client, http = await client_for(engine)
    async with http:
        reply = await client.chat.completions.create(
            model="base", messages=MESSAGES, tools=[WEATHER, TIME], tool_choice="required"
        )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    structured = engine.started[-1].sampling.structured
    assert structured is not None
    schema = json.loads(structured.schema or "")
    names = [item["properties"]["name"]["const"] for item in schema["items"]["anyOf"]]
    assert (schema["type"], names) == ("array", ["get_weather", "get_time"])
    assert "maxItems" not in schema  # parallel calls allowed unless the client says not
    assert "<|tools|>get_weather,get_time" in engine.started[-1].prompt  # the template saw them


async def test_a_named_function_is_called_with_arguments_matching_its_schema() -> None:
    engine = ScriptedEngine('{"city": "Paris"}')
    client, http = await client_for(engine)
    async with http:
        reply = await client.chat.completions.create(
            model="base",
            messages=MESSAGES,
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
        )
    (call,) = reply.choices[0].message.tool_calls or []
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "get_weather",
        {"city": "Paris"},
    )
    structured = engine.started[-1].sampling.structured
    assert structured is not None
    assert json.loads(structured.schema or "") == WEATHER["function"]["parameters"]


async def test_auto_reads_calls_with_the_deployments_parser() -> None:
    engine = ScriptedEngine('Let me look.\nCALL get_weather {"city": "Paris"}', tool_parser=True)
    client, http = await client_for(engine)
    async with http:
        reply = await client.chat.completions.create(
            model="base", messages=MESSAGES, tools=[WEATHER]
        )
    message = reply.choices[0].message
    assert message.content == "Let me look."
    assert [c.function.name for c in message.tool_calls or []] == ["get_weather"]
    assert reply.choices[0].finish_reason == "tool_calls"
    assert engine.started[-1].sampling.structured is None  # free text, parsed after


async def test_a_conversation_with_earlier_calls_and_their_results_is_rendered() -> None:
    engine = ScriptedEngine("It is sunny.")
    client, http = await client_for(engine)
    messages: Any = [
        *MESSAGES,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"},
    ]
    async with http:
        reply = await client.chat.completions.create(
            model="base", messages=messages, tools=[WEATHER], tool_choice="none"
        )
    assert reply.choices[0].message.content == "It is sunny."
    assert "<|tool|>sunny, 21 C" in engine.started[-1].prompt


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"tools": [WEATHER]}, "tools"),  # auto, and this deployment names no parser
        (
            {
                "tools": [WEATHER],
                "tool_choice": "required",
                "response_format": {"type": "json_object"},
            },
            "response_format",
        ),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "x"}}},
            "tool_choice",
        ),
        ({"tools": [WEATHER], "tool_choice": {"type": "nonsense"}}, "tool_choice"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "tool_call_id"),
        ({"messages": [{"role": "user"}]}, "content"),
    ],
)
async def test_tool_requests_it_cannot_honour_are_400s(options: dict[str, Any], param: str) -> None:
    engine = FakeEngine(model_name="base")
    app = create_app(EngineSlot(engine=engine))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        body = {"model": "base", "messages": MESSAGES, "max_tokens": 4, **options}
        reply = await c.post("/v1/chat/completions", json=body)
    assert reply.status_code == 400, reply.text
    assert str(reply.json()["error"]["param"]).split(".")[-1] == param
    assert engine.started == []


async def test_an_answer_that_is_not_a_call_stays_text() -> None:
    engine = ScriptedEngine("not json at all")
    client, http = await client_for(engine)
    async with http:
        reply = await client.chat.completions.create(
            model="base", messages=MESSAGES, tools=[WEATHER], tool_choice="required"
        )
    assert reply.choices[0].message.content == "not json at all"
    assert not reply.choices[0].message.tool_calls
    assert reply.choices[0].finish_reason == "stop"


async def test_parallel_tool_calls_false_allows_one_call() -> None:
    engine = ScriptedEngine('[{"name": "get_time", "parameters": {}}]')
    client, http = await client_for(engine)
    async with http:
        await client.chat.completions.create(
            model="base",
            messages=MESSAGES,
            tools=[WEATHER, TIME],
            tool_choice="required",
            parallel_tool_calls=False,
        )
    structured = engine.started[-1].sampling.structured
    assert structured is not None
    assert json.loads(structured.schema or "")["maxItems"] == 1


async def streamed(engine: FakeEngine, **options: Any) -> list[Any]:
    client, http = await client_for(engine)
    async with http:
        stream = await client.chat.completions.create(
            model="base", messages=MESSAGES, tools=[WEATHER, TIME], stream=True, **options
        )
        return [chunk.choices[0] async for chunk in stream if chunk.choices]


async def test_streamed_calls_arrive_as_tool_call_deltas_once_the_answer_ends() -> None:
    text = json.dumps(
        [
            {"name": "get_weather", "parameters": {"city": "Paris"}},
            {"name": "get_time", "parameters": {}},
        ]
    )
    choices = await streamed(ScriptedEngine(text), tool_choice="required")
    assert choices[0].delta.role == "assistant"
    assert not any(c.delta.content for c in choices)  # no JSON leaks out as text
    (last,) = [c for c in choices if c.delta.tool_calls]
    assert last is choices[-1]
    assert last.finish_reason == "tool_calls"
    calls = last.delta.tool_calls or []
    assert [(c.index, c.type, c.function.name) for c in calls] == [
        (0, "function", "get_weather"),
        (1, "function", "get_time"),
    ]
    assert json.loads(calls[0].function.arguments or "") == {"city": "Paris"}
    assert len({c.id for c in calls}) == 2
    assert all((c.id or "").startswith("call_") for c in calls)


async def test_a_streamed_answer_that_is_not_a_call_arrives_as_its_text() -> None:
    choices = await streamed(ScriptedEngine("not json at all"), tool_choice="required")
    assert "".join(c.delta.content or "" for c in choices) == "not json at all"
    assert not any(c.delta.tool_calls for c in choices)
    assert choices[-1].finish_reason == "stop"
