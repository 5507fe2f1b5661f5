"""Local mode's HTTP protocol: uvicorn's httptools protocol with a deadline for the request
head, so connections that open and never finish a request (idle, half-open, slowloris) are
closed instead of holding a descriptor each until the process runs out. Idle keep-alive
connections already close after uvicorn's keep-alive timeout; stalled bodies get a 408 from
the ingress's guard."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def head_deadline_protocol(header_timeout_s: float) -> type[HttpToolsProtocol]:
    class HeadDeadlineProtocol(HttpToolsProtocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._head_timer = self.loop.call_later(header_timeout_s, self._expired)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _expired(self) -> None:
            self._head_timer = None
            if not self.transport.is_closing():
                self.transport.close()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request's head gets the same deadline

        def connection_lost(self, exc: Any) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeadDeadlineProtocol
