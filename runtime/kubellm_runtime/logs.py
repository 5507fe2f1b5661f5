"""Structured logs: one JSON object per line, carrying the request's id, model, adapter, job_id.

``configure`` routes structlog and the standard library (uvicorn, vLLM, Ray) through one JSON
renderer. The ingress opens a request context (``request_context``); routes add what they
learn (``annotate``), and every line logged while serving the request carries those fields.
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal, TextIO

import structlog

_fields: ContextVar[dict[str, str] | None] = ContextVar("kubellm_request_fields", default=None)


def _request_fields(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in (_fields.get() or {}).items():
        event.setdefault(key, value)
    return event


@contextmanager
def request_context(request_id: str | None = None) -> Iterator[dict[str, str]]:
    """The fields of one request (request_id given or generated); shared with its tasks."""
    fields = {"request_id": request_id or uuid.uuid4().hex}
    token = _fields.set(fields)
    try:
        yield fields
    finally:
        _fields.reset(token)


def annotate(**values: str | None) -> None:
    """Add fields (model, adapter, job_id) to the current request's log lines."""
    fields = _fields.get()
    if fields is not None:
        fields.update({key: value for key, value in values.items() if value is not None})


def configure(
    fmt: Literal["json", "console"] = "json", level: str = "INFO", stream: TextIO | None = None
) -> None:
    """Install the renderer on the root logger (writing to stderr); safe to call again."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _request_fields,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,  # reconfigurable (tests); a dict lookup per line
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []  # propagate to the root's JSON handler
        logging.getLogger(name).propagate = True
