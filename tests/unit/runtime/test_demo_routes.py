"""The serving demo's routes (/generate_vllm, /basic_generate) and /chat's adapter_path."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from kubellm_runtime.adapters import Adapters
from kubellm_runtime.engine.fake import FakeEngine
from kubellm_runtime.ingress import EngineSlot, create_app
from kubellm_runtime.settings import RuntimeSettings
from kubellm_runtime.sources.policy import SourceNotAvailableError


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    for name in ("a", "b", "c"):
        (tmp_path / "adapters" / name).mkdir(parents=True)
        (tmp_path / "adapters" / name / "adapter_config.json").write_text("{}")
    return tmp_path / "adapters"


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine(model_name="base")


@pytest.fixture
async def api(engine: FakeEngine, allowed: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = RuntimeSettings(max_request_adapters=2)
    adapters = Adapters(engine, settings, lora_enabled=True)
    adapters.sources = (f"file://{allowed}",)
    app = create_app(EngineSlot(engine=engine, adapters=adapters), settings=settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        yield c


async def test_generate_vllm_answers_texts_that_repeat_the_prompt(api: httpx.AsyncClient) -> None:
    reply = await api.post(
        "/generate_vllm", json={"prompt": "Say:", "max_tokens": 2, "n": 2, "temperature": 0.5}
    )
    assert reply.status_code == 200
    assert reply.json() == {"text": ["Say:lorem ipsum", "Say:ipsum dolor"]}


async def test_generate_vllm_streams_cumulative_texts_delimited_by_nul(
    api: httpx.AsyncClient,
) -> None:
    reply = await api.post("/generate_vllm", json={"prompt": "P ", "max_tokens": 3, "stream": True})
    assert reply.status_code == 200
    parts = [json.loads(p) for p in reply.text.split("\0") if p]
    assert [p["text"] for p in parts] == [["P lorem"], ["P lorem ipsum"], ["P lorem ipsum dolor"]]


async def test_basic_generate_answers_the_continuation(api: httpx.AsyncClient) -> None:
    reply = await api.post("/basic_generate", json={"prompt": "hi", "max_tokens": 2})
    assert reply.json() == {"prompt": "hi", "text": "lorem ipsum", "finish_reason": "length"}


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/generate_vllm", {"prompt": "x", "stream": "yes"}, "stream"),
        ("/generate_vllm", {"prompt": "x", "n": 17}, "n"),
        ("/generate_vllm", {"prompt": ""}, "prompt"),
        ("/basic_generate", {"prompt": "x", "max_tokens": "4"}, "max_tokens"),
        ("/basic_generate", {"prompt": "x", "extra": 1}, "extra"),
    ],
)
async def test_bad_demo_bodies_are_400s_naming_the_field(
    api: httpx.AsyncClient, path: str, body: dict[str, object], param: str
) -> None:
    reply = await api.post(path, json=body)
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == param


async def test_chat_uses_an_adapter_path_from_an_allowed_prefix(
    api: httpx.AsyncClient, engine: FakeEngine, allowed: Path
) -> None:
    reply = await api.post("/chat", json={"prompt": "hi", "adapter_path": f"file://{allowed}/a"})
    assert reply.status_code == 200
    used = engine.started[-1].adapter
    assert used is not None
    assert used.startswith("path-")
    assert reply.json()["model"] == used
    named = await api.post(
        "/chat", json={"prompt": "hi", "adapter": "mine", "adapter_path": f"file://{allowed}/b"}
    )
    assert named.json()["model"] == "mine"


@pytest.mark.parametrize("source", ["file:///etc", "file://{allowed}/../a", "file://{allowed}/zz"])
async def test_chat_refuses_an_adapter_path_outside_the_allowed_prefixes(
    api: httpx.AsyncClient, engine: FakeEngine, allowed: Path, source: str
) -> None:
    uri = source.format(allowed=allowed)
    reply = await api.post("/chat", json={"prompt": "hi", "adapter_path": uri})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert (error["param"], error["message"]) == ("adapter_path", str(SourceNotAvailableError(uri)))
    assert engine.started == []


async def test_adapters_loaded_for_requests_are_bounded_least_recently_used_first(
    api: httpx.AsyncClient, engine: FakeEngine, allowed: Path
) -> None:
    for name in ("a", "b", "c"):
        body = {"prompt": "hi", "adapter": name, "adapter_path": f"file://{allowed}/{name}"}
        assert (await api.post("/chat", json=body)).status_code == 200
    assert sorted(engine.adapters()) == ["b", "c"]  # at most 2; "a" was the oldest
