"""Prompt rendering shared by the engines that hold a Hugging Face tokenizer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def render_chat(tokenizer: Any, messages: Sequence[dict[str, str]]) -> str:
    """The model's own chat template, ending where the assistant's turn begins."""
    text = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    return str(text)


def count_tokens(tokenizer: Any, text: str) -> int:
    return len(tokenizer.encode(text))
