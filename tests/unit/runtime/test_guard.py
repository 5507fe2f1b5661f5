"""The ingress's first layer: auth before the body, a bounded body, errors in OpenAI's shape."""

from __future__ import annotations

from collections.abc import AsyncIterator

from pydantic import SecretStr

from kubellm_runtime.engine.fake import FakeEngine

from .test_reliability import CHAT, client_for

KEY = {"Authorization": "Bearer s3cret"}


async def test_a_body_over_the_limit_is_a_413_before_it_is_parsed() -> None:
    engine = FakeEngine()
    async with client_for(engine, max_body_bytes=2048) as client:
        big = {**CHAT, "messages": [{"role": "user", "content": "x" * 4096}]}
        reply = await client.post("/v1/chat/completions", json=big)
        assert reply.status_code == 413
        assert reply.json()["error"]["code"] == "too_large"
        assert engine.started == []
        assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200


async def test_a_chunked_body_is_counted_as_it_arrives() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"model": "fake-model", "messages": [{"role": "user", "content": "'
        for _ in range(8):
            yield b"x" * 1024
        yield b'"}]}'

    async with client_for(FakeEngine(), max_body_bytes=2048) as client:
        reply = await client.post(
            "/v1/chat/completions", content=chunks(), headers={"Content-Type": "application/json"}
        )
    assert reply.status_code == 413
    assert reply.json()["error"]["code"] == "too_large"


async def test_without_the_key_nothing_is_read_and_the_answer_is_401() -> None:
    """The guard answers before the body: a client without the key cannot make the replica
    receive a byte of it (the body would fail to parse if it were read)."""
    async with client_for(FakeEngine(), api_key=SecretStr("s3cret")) as client:
        for route in ("/v1/chat/completions", "/generate", "/chat", "/v1/load_lora_adapter"):
            reply = await client.post(route, content=b"{not json")
            assert reply.status_code == 401, route
            assert reply.json()["error"]["code"] == "invalid_api_key"
        assert (
            await client.post("/v1/chat/completions", json=CHAT, headers=KEY)
        ).status_code == 200
        for probe in ("/health", "/metrics"):
            assert (await client.get(probe)).status_code == 200, probe


async def test_routing_errors_are_in_openais_shape() -> None:
    async with client_for(FakeEngine()) as client:
        missing = await client.get("/v2/nothing")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        wrong = await client.delete("/v1/chat/completions")
        assert wrong.status_code == 405
        assert wrong.json()["error"]["code"] == "method_not_allowed"


async def test_a_wrong_key_is_refused_on_every_kind_of_route() -> None:
    async with client_for(FakeEngine(), api_key=SecretStr("s3cret")) as client:
        bad = {"Authorization": "Bearer nope"}
        for method, route in (("GET", "/v1/models"), ("GET", "/docs"), ("POST", "/generate")):
            reply = await client.request(method, route, headers=bad)
            assert reply.status_code == 401, route
        assert isinstance((await client.get("/v1/models", headers=KEY)).json(), dict)
