"""Local mode's adapter routes (vLLM's bodies), served only with an admin key.

On Ray Serve they are not served: a load there would reach one random replica and be
forgotten on restart. There the LLMDeployment's spec.adapters is the one list, and every
replica applies it live (``adapters.Adapters.apply``).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter

from kubellm_runtime.adapters import AdapterConflictError, Adapters
from kubellm_runtime.engine.base import AdapterLoadError, UnknownAdapterError
from kubellm_runtime.openai.errors import ApiError
from kubellm_runtime.openai.protocol import LoadLoraRequest, UnloadLoraRequest
from kubellm_runtime.sources import SourceError


def admin_router(adapters: Callable[[], Adapters]) -> APIRouter:
    router = APIRouter()  # behind the guard's admin key

    @router.post("/v1/load_lora_adapter")
    async def load_lora(request: LoadLoraRequest) -> dict[str, str]:
        try:
            await adapters().load(request.lora_name, request.lora_path)
        except AdapterConflictError as exc:
            raise ApiError(
                409,
                f"`{request.lora_name}` is already served from another source",
                param="lora_name",
                code="conflict",
            ) from exc
        except (SourceError, AdapterLoadError) as exc:
            raise ApiError(400, str(exc), param="lora_path") from exc
        return {"status": "loaded", "lora_name": request.lora_name}

    @router.post("/v1/unload_lora_adapter")
    async def unload_lora(request: UnloadLoraRequest) -> dict[str, str]:
        try:
            await adapters().unload(request.lora_name)
        except UnknownAdapterError as exc:
            raise ApiError(
                404, f"no adapter `{request.lora_name}` is loaded", param="lora_name"
            ) from exc
        return {"status": "unloaded", "lora_name": request.lora_name}

    return router
