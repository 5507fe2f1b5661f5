"""Log-probabilities in OpenAI's two response shapes (chat's and the legacy completions')."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from kubellm_runtime.engine.base import TokenLogprob


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int]


class ChatTokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChatLogprobs(BaseModel):
    content: list[ChatTokenLogprob]


class CompletionLogprobs(BaseModel):
    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


def _top(token: str, logprob: float) -> TopLogprob:
    return TopLogprob(token=token, logprob=logprob, bytes=list(token.encode()))


def chat_logprobs(items: Sequence[TokenLogprob]) -> ChatLogprobs:
    return ChatLogprobs(
        content=[
            ChatTokenLogprob(
                token=t.token,
                logprob=t.logprob,
                bytes=list(t.token.encode()),
                top_logprobs=[_top(token, lp) for token, lp in t.top],
            )
            for t in items
        ]
    )


def completion_logprobs(items: Sequence[TokenLogprob], offset: int = 0) -> CompletionLogprobs:
    """``offset``: where the first token starts in the choice's text."""
    offsets = []
    for t in items:
        offsets.append(offset)
        offset += len(t.token)
    return CompletionLogprobs(
        tokens=[t.token for t in items],
        token_logprobs=[t.logprob for t in items],
        top_logprobs=[dict(t.top) for t in items],
        text_offset=offsets,
    )
