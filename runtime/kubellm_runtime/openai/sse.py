"""Server-sent events framing, as OpenAI streams it."""

from __future__ import annotations

DONE = "data: [DONE]\n\n"


def sse(payload: str) -> str:
    return f"data: {payload}\n\n"
