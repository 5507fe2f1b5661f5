"""The transformers fallback engine behind the same API: text, streams, stops, n, LoRA."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from kubellm_dev import netns

from .conftest import ADMIN, ADMIN_KEY, RuntimeServer, _unavailable, serve_locally

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def runtime(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RuntimeServer]:
    if not netns.loopback_only():
        _unavailable("the runtime tier runs in a loopback-only namespace: use `make test`")
    supervisor, server = serve_locally(
        tiny_model_dir,
        "tiny",
        tmp_path_factory.mktemp("transformers-logs"),
        (
            *("--engine", "transformers", "--max-model-len", "256", "--enable-lora"),
            *("--adapter-source", f"file://{tmp_path_factory.getbasetemp()}"),
        ),
        env={"KUBELLM_RUNTIME_ADMIN_KEY": ADMIN_KEY},
    )
    try:
        yield server
    finally:
        supervisor.stop_all()


@pytest.fixture
def client(runtime: RuntimeServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{runtime.base_url}/v1", api_key="x", max_retries=0)


def complete(
    client: openai.OpenAI, model: str = "tiny", **options: object
) -> openai.types.Completion:
    options = {"max_tokens": 10, "temperature": 0, **options}
    return client.completions.create(  # type: ignore[call-overload,no-any-return]
        model=model, prompt="The capital of France is", **options
    )


def test_greedy_text_with_usage_and_finish_reason(client: openai.OpenAI) -> None:
    reply = complete(client)
    choice = reply.choices[0]
    assert choice.text
    assert reply.usage is not None
    assert reply.usage.completion_tokens <= 10
    assert choice.finish_reason == ("length" if reply.usage.completion_tokens == 10 else "stop")
    assert complete(client).choices[0].text == choice.text  # greedy is deterministic


def test_a_chat_stream_matches_the_plain_reply(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "Hello there"}]
    plain = client.chat.completions.create(
        model="tiny",
        messages=messages,
        max_tokens=8,
        temperature=0,  # type: ignore[arg-type]
    )
    stream = client.chat.completions.create(
        model="tiny",
        messages=messages,
        max_tokens=8,
        temperature=0,
        stream=True,  # type: ignore[arg-type]
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == (
        plain.choices[0].message.content
    )


def test_a_stop_string_cuts_the_text_before_it(client: openai.OpenAI) -> None:
    text = complete(client).choices[0].text
    if len(text) < 4:
        pytest.skip(f"the random model produced too little text to pick a stop from: {text!r}")
    stop = text[len(text) // 2 : len(text) // 2 + 2]
    cut = complete(client, stop=[stop]).choices[0]
    assert cut.finish_reason == "stop"
    assert cut.text == text[: text.index(stop)]


def test_n_samples_with_a_seed_are_reproducible(client: openai.OpenAI) -> None:
    first = complete(client, n=2, temperature=1.0, seed=7)
    again = complete(client, n=2, temperature=1.0, seed=7)
    assert [c.index for c in first.choices] == [0, 1]
    assert [c.text for c in first.choices] == [c.text for c in again.choices]


def test_a_peft_adapter_is_loaded_selected_and_unloaded(
    runtime: RuntimeServer, client: openai.OpenAI, tiny_adapter_dir: Path
) -> None:
    http = httpx.Client(base_url=runtime.base_url, timeout=120, trust_env=False, headers=ADMIN)
    base = complete(client).choices[0].text
    loaded = http.post(
        "/v1/load_lora_adapter",
        json={"lora_name": "tuned", "lora_path": f"file://{tiny_adapter_dir}"},
    )
    assert loaded.status_code == 200, loaded.text
    assert [m.id for m in client.models.list()] == ["tiny", "tuned"]
    assert complete(client, "tuned").choices[0].text != base
    assert complete(client).choices[0].text == base  # the base model is untouched
    assert http.post("/v1/unload_lora_adapter", json={"lora_name": "tuned"}).status_code == 200
    with pytest.raises(openai.NotFoundError):
        complete(client, "tuned")
    # With its last adapter gone the base model still answers, the same as before any load
    # (PEFT cannot generate with no adapter left: the engine is back on the plain model).
    assert complete(client).choices[0].text == base
    # And a second load works on that plain model again.
    again = http.post(
        "/v1/load_lora_adapter",
        json={"lora_name": "tuned", "lora_path": f"file://{tiny_adapter_dir}"},
    )
    assert again.status_code == 200, again.text
    assert complete(client, "tuned").choices[0].text != base
    assert http.post("/v1/unload_lora_adapter", json={"lora_name": "tuned"}).status_code == 200
