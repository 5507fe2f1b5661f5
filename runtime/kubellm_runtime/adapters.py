"""The adapters a replica serves, changed only through one door.

* ``apply``: the deployment's list (Ray Serve's user_config, from spec.adapters): every
  replica loads exactly these, also one that starts later. New sources are all resolved
  before anything changes, so a bad one leaves the served set as it was.
* ``load``/``unload``: an adapter a client names (local mode's admin routes). Its source must
  lie under the deployment's allowed prefixes; LoRA is checked before any I/O; missing and
  not-allowed look the same; concurrent loads of one name load it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import OrderedDict
from pathlib import Path

import structlog

from kubellm_runtime.contract import ReplicaConfig
from kubellm_runtime.engine.base import AdapterLoadError, Engine, UnknownAdapterError
from kubellm_runtime.settings import RuntimeSettings
from kubellm_runtime.sources import SourceError, resolve
from kubellm_runtime.sources.local import local_path
from kubellm_runtime.sources.policy import (
    SourceNotAvailableError,
    allowed,
    client_source,
    inside,
)

log = structlog.get_logger(__name__)


class AdapterConflictError(Exception):
    """The name is already served from another source (or is the base model's)."""


def no_lora() -> AdapterLoadError:
    return AdapterLoadError(
        "this model was started without LoRA support (LLMDeployment spec.enableLora, "
        "local mode --enable-lora)"
    )


class Adapters:
    """The served adapter set of one engine: name -> source URI."""

    def __init__(self, engine: Engine, settings: RuntimeSettings, lora_enabled: bool) -> None:
        self.engine = engine
        self.settings = settings
        self.lora_enabled = lora_enabled
        self.sources: tuple[str, ...] = ()
        self.served: dict[str, str] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()  # loaded for requests, LRU
        self._lock = asyncio.Lock()

    async def _resolve(self, uri: str) -> Path:
        return await asyncio.to_thread(
            resolve, uri, None, self.settings, max_bytes=self.settings.max_adapter_bytes
        )

    async def apply(self, config: ReplicaConfig) -> None:
        """Serve exactly ``config.adapters``; raises (changing nothing) if one cannot load."""
        async with self._lock:
            self.sources = config.adapter_sources
            desired = {a.name: a.uri for a in config.adapters}
            if desired and not self.lora_enabled:
                raise no_lora()
            changed = {n: u for n, u in desired.items() if self.served.get(n) != u}
            paths = {n: await self._resolve(u) for n, u in changed.items()}
            for name in [n for n in self.served if n not in desired or n in changed]:
                await self.engine.remove_adapter(name)
                del self.served[name]
                log.info("adapter unloaded", adapter=name)
            for name, path in paths.items():
                await self.engine.add_adapter(name, str(path))
                self.served[name] = desired[name]
                log.info("adapter loaded", adapter=name, uri=desired[name])

    async def load(self, name: str, uri: str) -> bool:
        """A client-named adapter; False if it was already served from this source."""
        if not self.lora_enabled:
            raise no_lora()
        client_source(uri, self.sources)
        async with self._lock:
            if self.served.get(name) == uri:
                return False  # a concurrent (or repeated) load of the same adapter
            if name in self.served or name == self.engine.model_name:
                raise AdapterConflictError(name)
            try:
                path = await self._resolve(uri)
                self._confined(uri, path)
                await self.engine.add_adapter(name, str(path))
            except (SourceError, AdapterLoadError) as exc:
                log.info("client adapter refused", adapter=name, uri=uri, reason=str(exc))
                if isinstance(exc, SourceError):
                    raise SourceNotAvailableError(uri) from None
                raise AdapterLoadError(
                    f"`{uri}` is not a LoRA adapter this model can serve"
                ) from None
            self.served[name] = uri
            log.info("adapter loaded", adapter=name, uri=uri)
            return True

    async def for_request(self, name: str | None, uri: str) -> str:
        """The adapter a request names by source (/chat's adapter_path), loaded on demand
        under ``name`` (or one derived from the source); the least recently used of these
        is unloaded past ``settings.max_request_adapters``."""
        name = name or f"path-{hashlib.sha256(uri.encode()).hexdigest()[:16]}"
        if self.served.get(name) != uri:
            await self.load(name, uri)
        self._recent.pop(name, None)
        self._recent[name] = None
        while len(self._recent) > self.settings.max_request_adapters:
            oldest = next(iter(self._recent))
            del self._recent[oldest]
            with contextlib.suppress(UnknownAdapterError):
                await self.unload(oldest)
        return name

    async def unload(self, name: str) -> None:
        async with self._lock:
            if name not in self.served:
                raise UnknownAdapterError(name)
            await self.engine.remove_adapter(name)
            del self.served[name]
            log.info("adapter unloaded", adapter=name)

    def _confined(self, uri: str, path: Path) -> None:
        """A mounted client source must stay under its allowed prefix, symlinks followed."""
        if not uri.startswith(("file://", "pvc://")):
            return
        roots = [
            local_path(p, self.settings.pvc_root)
            for p in self.sources
            if p.startswith(("file://", "pvc://")) and allowed(uri, (p,))
        ]
        if not any(inside(path, root) for root in roots):
            raise SourceNotAvailableError(uri)
