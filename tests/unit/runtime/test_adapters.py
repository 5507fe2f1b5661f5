"""Adapter loading is confined: an admin key, allowed prefixes, one answer for refused and
missing, no I/O outside the roots, LoRA checked first, one load per name (fake engine)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from kubellm_runtime.adapters import Adapters
from kubellm_runtime.contract import AdapterArgs, ReplicaConfig
from kubellm_runtime.engine.base import AdapterLoadError
from kubellm_runtime.engine.fake import FakeEngine
from kubellm_runtime.ingress import EngineSlot, create_app
from kubellm_runtime.settings import RuntimeSettings
from kubellm_runtime.sources import SourceError
from kubellm_runtime.sources.policy import SourceNotAvailableError

API, ADMIN = "inference-key", "admin-key"
NOT_AVAILABLE = "does not exist or this deployment does not allow it"


class CountingEngine(FakeEngine):
    def __init__(self) -> None:
        super().__init__(model_name="base", adapters=[])
        self.loads: list[tuple[str, str]] = []
        self.started, self.finish = asyncio.Event(), asyncio.Event()
        self.finish.set()  # loads end at once unless a test holds them

    async def add_adapter(self, name: str, path: str) -> None:
        self.loads.append((name, path))
        self.started.set()
        await self.finish.wait()
        await super().add_adapter(name, path)


def adapter_dir(path: Path, size: int = 10) -> Path:
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text("{}")
    (path / "adapter_model.safetensors").write_bytes(b"x" * size)
    return path


@pytest.fixture
def roots(tmp_path: Path) -> dict[str, Path]:
    allowed = tmp_path / "allowed"
    adapter_dir(allowed / "sql")
    adapter_dir(tmp_path / "secret")
    (tmp_path / "pvc" / "claim").mkdir(parents=True)
    adapter_dir(tmp_path / "pvc" / "claim" / "adapters" / "chat")
    return {"tmp": tmp_path, "allowed": allowed, "cache": tmp_path / "cache"}


def settings_for(roots: dict[str, Path], **extra: object) -> RuntimeSettings:
    return RuntimeSettings(
        api_key=API,
        admin_key=ADMIN,
        pvc_root=roots["tmp"] / "pvc",
        model_cache_dir=roots["cache"],
        **extra,  # type: ignore[arg-type]
    )


def served(engine: FakeEngine, settings: RuntimeSettings, lora: bool = True) -> EngineSlot:
    adapters = Adapters(engine, settings, lora_enabled=lora)
    return EngineSlot(engine=engine, adapters=adapters)


@pytest.fixture
async def admin(roots: dict[str, Path]) -> AsyncIterator[tuple[httpx.AsyncClient, EngineSlot]]:
    settings = settings_for(roots)
    slot = served(CountingEngine(), settings)
    assert slot.adapters is not None
    slot.adapters.sources = (f"file://{roots['allowed']}", "pvc://claim/adapters", "s3://bucket/ok")
    app = create_app(slot, settings=settings)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://r", headers=headers) as c:
        yield c, slot


async def load(client: httpx.AsyncClient, name: str, path: str) -> httpx.Response:
    return await client.post("/v1/load_lora_adapter", json={"lora_name": name, "lora_path": path})


async def test_the_adapter_routes_are_not_served_without_an_admin_key() -> None:
    app = create_app(EngineSlot(engine=FakeEngine()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        reply = await c.post("/v1/load_lora_adapter", json={"lora_name": "a", "lora_path": "/x"})
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "not_found"


async def test_the_inference_key_cannot_load_adapters(
    admin: tuple[httpx.AsyncClient, EngineSlot], roots: dict[str, Path]
) -> None:
    client, _ = admin
    reply = await client.post(
        "/v1/load_lora_adapter",
        json={"lora_name": "sql", "lora_path": f"file://{roots['allowed']}/sql"},
        headers={"Authorization": f"Bearer {API}"},
    )
    assert reply.status_code == 401


def test_the_admin_key_must_differ_from_the_api_key() -> None:
    with pytest.raises(ValidationError, match="must differ from the API key"):
        RuntimeSettings(api_key="same", admin_key=" same\n")


async def test_an_allowed_adapter_loads_is_served_and_unloads(
    admin: tuple[httpx.AsyncClient, EngineSlot], roots: dict[str, Path]
) -> None:
    client, slot = admin
    assert (await load(client, "sql", f"file://{roots['allowed']}/sql")).status_code == 200
    assert (await load(client, "chat", "pvc://claim/adapters/chat")).status_code == 200
    assert slot.engine is not None
    assert slot.engine.adapters() == ["sql", "chat"]
    unloaded = await client.post("/v1/unload_lora_adapter", json={"lora_name": "sql"})
    assert unloaded.status_code == 200
    assert slot.engine.adapters() == ["chat"]


@pytest.mark.parametrize(
    "source",
    [
        "file://{tmp}/secret",  # exists, outside every allowed prefix
        "file://{allowed}/missing",  # allowed, does not exist
        "file://{allowed}/../secret",  # climbs out
        "file://{allowed}/sql/../../secret",
        "pvc://claim/adapters/../../../etc",
        "pvc://other-claim/x",
        "{allowed}/sql",  # a bare path
        "s3://bucket/../../../x",  # would have made a directory outside the cache
        "s3://bucket/ok%2f..%2f..%2fx",
        "s3://elsewhere/x",
        "hf://a/b/c",  # was a 500
        "hf://org/name",  # not allowed (and no hub here)
        "file://{allowed}/sql\\..\\..",
    ],
)
async def test_refused_and_missing_sources_get_one_answer_and_touch_nothing(
    admin: tuple[httpx.AsyncClient, EngineSlot], roots: dict[str, Path], source: str
) -> None:
    client, slot = admin
    uri = source.format(tmp=roots["tmp"], allowed=roots["allowed"])
    reply = await load(client, "x", uri)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["param"] == "lora_path"
    # The same answer whether refused or missing, naming only what the client sent.
    assert error["message"] == str(SourceNotAvailableError(uri))
    assert not roots["cache"].exists()  # no directory, no lock file anywhere
    assert slot.engine is not None
    assert slot.engine.adapters() == []


async def test_a_symlink_out_of_an_allowed_prefix_is_refused(
    admin: tuple[httpx.AsyncClient, EngineSlot], roots: dict[str, Path]
) -> None:
    client, _ = admin
    (roots["allowed"] / "link").symlink_to(roots["tmp"] / "secret")
    reply = await load(client, "x", f"file://{roots['allowed']}/link")
    assert reply.status_code == 400
    assert NOT_AVAILABLE in reply.json()["error"]["message"]


async def test_without_lora_a_load_is_refused_before_any_io(roots: dict[str, Path]) -> None:
    settings = settings_for(roots)
    slot = served(FakeEngine(), settings, lora=False)
    assert slot.adapters is not None
    slot.adapters.sources = ("s3://bucket",)
    with pytest.raises(AdapterLoadError, match="without LoRA"):
        await slot.adapters.load("x", "s3://bucket/../../../x")
    assert not roots["cache"].exists()


async def test_concurrent_loads_of_one_adapter_load_it_once(
    admin: tuple[httpx.AsyncClient, EngineSlot], roots: dict[str, Path]
) -> None:
    client, slot = admin
    engine, adapters = slot.engine, slot.adapters
    assert isinstance(engine, CountingEngine)
    assert adapters is not None
    entered, arrived = 0, asyncio.Event()
    original = adapters.load

    async def counted(name: str, uri: str) -> bool:
        nonlocal entered
        entered += 1
        if entered == 5:
            arrived.set()
        return await original(name, uri)  # the later ones wait on the first one's lock

    adapters.load = counted  # type: ignore[method-assign]
    engine.finish.clear()  # the first load holds until all five have arrived
    uri = f"file://{roots['allowed']}/sql"
    replies = asyncio.gather(*(load(client, "sql", uri) for _ in range(5)))
    async with asyncio.timeout(10):
        await arrived.wait()
        await engine.started.wait()
    assert len(engine.loads) == 1
    engine.finish.set()
    assert [r.status_code for r in await replies] == [200] * 5
    assert len(engine.loads) == 1
    other = await load(client, "sql", "pvc://claim/adapters/chat")
    assert other.status_code == 409
    assert other.json()["error"]["param"] == "lora_name"


async def test_an_adapter_over_the_size_limit_is_refused(roots: dict[str, Path]) -> None:
    settings = settings_for(roots, max_adapter_bytes=1024)
    adapter_dir(roots["allowed"] / "big", size=4096)
    slot = served(FakeEngine(), settings)
    assert slot.adapters is not None
    slot.adapters.sources = (f"file://{roots['allowed']}",)
    with pytest.raises(SourceError, match=NOT_AVAILABLE):
        await slot.adapters.load("big", f"file://{roots['allowed']}/big")
    with pytest.raises(SourceError, match="more than the limit"):  # the spec's: with detail
        await slot.adapters.apply(
            ReplicaConfig(adapters=(AdapterArgs(name="big", uri=f"file://{roots['allowed']}/big"),))
        )


async def test_apply_serves_exactly_the_listed_adapters_and_a_bad_list_changes_nothing(
    roots: dict[str, Path],
) -> None:
    engine = FakeEngine(model_name="base")
    adapters = Adapters(engine, settings_for(roots), lora_enabled=True)
    sql = AdapterArgs(name="sql", uri=f"file://{roots['allowed']}/sql")
    chat = AdapterArgs(name="chat", uri="pvc://claim/adapters/chat")
    await adapters.apply(ReplicaConfig(adapters=(sql, chat)))
    assert sorted(engine.adapters()) == ["chat", "sql"]
    await adapters.apply(ReplicaConfig(adapters=(chat,)))
    assert engine.adapters() == ["chat"]
    broken = AdapterArgs(name="broken", uri=f"file://{roots['allowed']}/missing")
    with pytest.raises(SourceError):
        await adapters.apply(ReplicaConfig(adapters=(sql, broken)))
    assert engine.adapters() == ["chat"]  # resolved first: nothing changed


async def test_a_spec_listing_adapters_on_an_engine_without_lora_is_refused(
    roots: dict[str, Path],
) -> None:
    adapters = Adapters(FakeEngine(), settings_for(roots), lora_enabled=False)
    sql = AdapterArgs(name="sql", uri=f"file://{roots['allowed']}/sql")
    with pytest.raises(AdapterLoadError, match="without LoRA"):
        await adapters.apply(ReplicaConfig(adapters=(sql,)))
