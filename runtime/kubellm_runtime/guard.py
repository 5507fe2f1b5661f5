"""The ingress's first layer (plain ASGI, before routing and before the body is read).

* **Auth** when a key is configured: every route but the probes and the metrics needs
  ``Authorization: Bearer <key>``, and it is checked before the body is read, so a client
  without the key cannot make the replica receive or parse anything. A route added later is
  protected unless it is named here (fails closed). The adapter routes need the separate
  admin key instead (when there is none, they are not served).
* **Body size and pace**: a declared ``Content-Length`` over the limit is refused at once
  (413); a chunked body is counted as it arrives and refused when it passes the limit; a body
  that stalls between two chunks past the body timeout is a 408.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

from kubellm_runtime.openai.errors import ApiError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Respond = Callable[[ApiError, Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/health", "/ready", "/metrics"})
"""Probes (the kubelet and Ray Serve send no key) and the metrics scrape."""
ADMIN_PATHS = frozenset({"/v1/load_lora_adapter", "/v1/unload_lora_adapter"})
"""Changing what the replica serves: the admin key, never the inference key."""


TOO_LARGE = 413


def too_large(limit: int) -> ApiError:
    return ApiError(TOO_LARGE, f"the request body is larger than {limit} bytes", code="too_large")


class BodyTimeoutError(HTTPException):
    """The body stalled between two chunks for longer than the limit: a 408."""

    def __init__(self, limit_s: float) -> None:
        super().__init__(408, f"the request body stalled for more than {limit_s:g} s")


class BodyTooLargeError(HTTPException):
    """Raised while the app reads a body that passes the limit: an HTTPException, so the
    framework passes it on as it is (its own body errors become 400s) to the 413 handler."""

    def __init__(self, limit: int) -> None:
        super().__init__(TOO_LARGE, too_large(limit).message)


def unauthorized() -> ApiError:
    return ApiError(
        401,
        "a valid API key is required (Authorization: Bearer <key>)",
        type="authentication_error",
        code="invalid_api_key",
    )


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value)
    return None


def authorized(scope: Scope, key: bytes) -> bool:
    scheme, _, token = (_header(scope, b"authorization") or b"").partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(token, key)


class RequestGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        api_key: bytes | None,
        max_body_bytes: int,
        respond: Respond,
        admin_key: bytes | None = None,
        body_timeout_s: float = 30.0,
    ) -> None:
        self.app = app
        self.api_key = api_key
        self.admin_key = admin_key
        self.body_timeout_s = body_timeout_s
        self.max_body_bytes = max_body_bytes
        self.respond = respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", "")).removeprefix(str(scope.get("root_path", ""))) or "/"
        key = self.admin_key if path in ADMIN_PATHS and self.admin_key else self.api_key
        if key is not None and path not in OPEN_PATHS and not authorized(scope, key):
            await self.respond(unauthorized(), scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self.respond(too_large(self.max_body_bytes), scope, receive, send)
            return
        await self.app(scope, self._counted(receive), send)

    def _counted(self, receive: Receive) -> Receive:
        seen = 0
        limit = self.max_body_bytes
        complete = False

        async def counted() -> Message:
            nonlocal seen, complete
            if complete:  # what follows the body (a disconnect) may take any time
                return await receive()
            try:
                async with asyncio.timeout(self.body_timeout_s):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeoutError(self.body_timeout_s) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLargeError(limit)
                complete = not message.get("more_body", False)
            return message

        return counted
