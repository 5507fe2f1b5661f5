"""Auth fails closed: keys are trimmed, an empty one is an error, the docs need the key too."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from kubellm_runtime.engine.fake import FakeEngine
from kubellm_runtime.settings import AuthConfigError, RuntimeSettings

from .test_reliability import client_for

ENV = "KUBELLM_TEST_KEY"


def test_a_key_read_from_a_secret_is_stripped_of_its_newline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBELLM_API_KEY", "s3cret\n")
    key = RuntimeSettings().api_key
    assert key is not None
    assert key.get_secret_value() == "s3cret"


@pytest.mark.parametrize("value", ["", "  \n"])
def test_an_empty_key_is_refused_instead_of_turning_auth_off(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("KUBELLM_API_KEY", value)
    with pytest.raises(ValidationError, match="set but empty"):
        RuntimeSettings()


def test_the_contracts_key_variable_is_read_and_trimmed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, " k3y \n")
    key = RuntimeSettings().with_auth(ENV).api_key
    assert key is not None
    assert key.get_secret_value() == "k3y"
    assert RuntimeSettings().with_auth(None).api_key is None  # local mode: its own setting


def test_auth_on_without_the_variable_fails_the_replica(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(AuthConfigError, match=f"{ENV} is not set"):
        RuntimeSettings().with_auth(ENV)
    monkeypatch.setenv(ENV, "")
    with pytest.raises(AuthConfigError, match="set but empty"):
        RuntimeSettings().with_auth(ENV)


async def test_the_api_description_needs_the_key_when_there_is_one() -> None:
    async with client_for(FakeEngine(), api_key=SecretStr("s3cret")) as client:
        for path in ("/openapi.json", "/docs"):
            assert (await client.get(path)).status_code == 401, path
            allowed = await client.get(path, headers={"Authorization": "Bearer s3cret"})
            assert allowed.status_code == 200, path
        schema = await client.get("/openapi.json", headers={"Authorization": "Bearer s3cret"})
        assert "/v1/chat/completions" in schema.json()["paths"]
        assert (
            await client.get("/redoc", headers={"Authorization": "Bearer s3cret"})
        ).status_code == 404
        assert (await client.get("/redoc")).status_code == 401  # unknown paths are guarded too


async def test_without_a_key_the_api_description_is_open() -> None:
    async with client_for(FakeEngine()) as client:
        assert (await client.get("/openapi.json")).status_code == 200
        assert "swagger" in (await client.get("/docs")).text.lower()
