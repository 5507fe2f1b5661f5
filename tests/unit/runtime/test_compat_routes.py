"""Routes kept from the systems kubellm grew from, each with its documented body (fake engine)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from kubellm_runtime.engine.fake import FakeEngine
from kubellm_runtime.ingress import EngineSlot, create_app


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine(model_name="base", adapters=["sql"], token_delay=0.001)


@pytest.fixture
async def api(engine: FakeEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(EngineSlot(engine=engine))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        yield c


async def test_chat_answers_a_prompt_with_an_optional_adapter(
    api: httpx.AsyncClient, engine: FakeEngine
) -> None:
    reply = await api.post(
        "/chat", json={"prompt": "hi", "max_tokens": 2, "temperature": 0.2, "adapter": "sql"}
    )
    assert reply.status_code == 200
    body = reply.json()
    assert body["response"] == "lorem ipsum"
    assert body["model"] == "sql"
    assert engine.started[-1].adapter == "sql"


async def test_generate_answers_a_batch_one_result_per_prompt_in_order(
    api: httpx.AsyncClient,
) -> None:
    reply = await api.post("/generate", json={"prompts": ["a", "b", "c"], "max_tokens": 1})
    results = reply.json()["results"]
    assert [r["prompt"] for r in results] == ["a", "b", "c"]
    assert all(r["text"] == "lorem" for r in results)


async def test_generate_stream_is_sse_with_text_events_and_done(api: httpx.AsyncClient) -> None:
    reply = await api.post("/generate_stream", json={"prompt": "hi", "max_tokens": 3})
    lines = [
        line.removeprefix("data: ") for line in reply.text.splitlines() if line.startswith("data: ")
    ]
    assert lines[-1] == "[DONE]"
    assert "".join(json.loads(line)["text"] for line in lines[:-1]) == "lorem ipsum dolor"


JOB = {
    "job_id": "job-42",
    "meta": {"temperature": 0.1, "tokens_limit": 4, "stop_words": ["dolor"], "model": "base"},
    "content": "hello",
}


async def test_a_job_keyed_generate_honours_meta(api: httpx.AsyncClient) -> None:
    body = (await api.post("/generate", json=JOB)).json()
    assert body == {"job_id": "job-42", "content": "lorem ipsum "}


async def test_a_repeated_job_id_returns_the_stored_result_without_generating(
    api: httpx.AsyncClient, engine: FakeEngine
) -> None:
    first = (await api.post("/generate", json=JOB)).json()
    again = (await api.post("/generate", json=JOB)).json()
    assert again == first
    assert len(engine.started) == 1


async def test_concurrent_duplicates_share_one_generation(
    api: httpx.AsyncClient, engine: FakeEngine
) -> None:
    body = {
        "job_id": "job-7",
        "meta": {"tokens_limit": 20},
        "messages": [{"role": "user", "content": "x"}],
    }
    replies = await asyncio.gather(*(api.post("/chat_completion", json=body) for _ in range(5)))
    contents = {r.json()["content"] for r in replies}
    assert len(contents) == 1
    assert all(r.json()["job_id"] == "job-7" for r in replies)
    assert len(engine.started) == 1


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/chat", {"prompt": "", "max_tokens": 2}, "prompt"),
        ("/generate", {"prompts": []}, "prompts"),
        (
            "/generate",
            {"job_id": "j", "meta": {"temperature": -1}, "content": "x"},
            "meta.temperature",
        ),
        ("/chat_completion", {"job_id": "j", "messages": []}, "messages"),
        ("/generate_stream", {"prompt": "x", "max_tokens": 0}, "max_tokens"),
    ],
)
async def test_bad_bodies_get_400_naming_the_field(
    api: httpx.AsyncClient, path: str, body: dict, param: str
) -> None:
    reply = await api.post(path, json=body)
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == param


async def test_an_unknown_adapter_is_a_404(api: httpx.AsyncClient) -> None:
    reply = await api.post("/chat", json={"prompt": "hi", "adapter": "nope"})
    assert reply.status_code == 404
