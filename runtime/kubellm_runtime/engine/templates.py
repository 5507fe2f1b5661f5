"""Prompt rendering shared by the engines that hold a Hugging Face tokenizer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def render_chat(
    tokenizer: Any,
    messages: Sequence[dict[str, Any]],
    tools: Sequence[dict[str, Any]] | None = None,
) -> str:
    """The model's own chat template, ending where the assistant's turn begins."""
    text = tokenizer.apply_chat_template(
        list(messages),
        tools=list(tools) if tools else None,
        tokenize=False,
        add_generation_prompt=True,
    )
    return str(text)


def tokenize(tokenizer: Any, text: str, special_tokens: bool) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=special_tokens))
