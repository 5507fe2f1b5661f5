"""vLLM's own tool-call parsers behind tool_choice "auto", on a real tokenizer: the one the
deployment names reads calls from the model's text, and one that does not fit the model (or
does not exist) stops the engine's start with the reason, not each request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from kubellm_runtime.engine.base import ToolCall
from kubellm_runtime.engine.vllm_engine import VLLMEngine

pytestmark = pytest.mark.integration
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


class TokenizerOnly:
    """What the parsers need of the engine: the model's tokenizer (no weights loaded)."""

    def __init__(self, model_dir: Path) -> None:
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)

    def get_tokenizer(self) -> Any:
        return self.tokenizer


def test_the_hermes_parser_reads_calls_and_leaves_plain_text(tiny_model_dir: Path) -> None:
    engine = VLLMEngine(TokenizerOnly(tiny_model_dir), "tiny", False, "hermes")  # type: ignore[arg-type]
    assert engine.parses_tools()
    called = engine.tool_calls(
        'Looking.<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>',
        [WEATHER],
    )
    assert called.calls == (ToolCall("get_weather", '{"city": "Paris"}'),)
    assert called.content == "Looking."
    plain = engine.tool_calls("It is sunny in Paris.", [WEATHER])
    assert (plain.content, plain.calls) == ("It is sunny in Paris.", ())


@pytest.mark.parametrize(
    ("parser", "reason"),
    [("mistral", "does not fit this model"), ("no_such_parser", "is not one of vLLM's")],
)
def test_a_parser_the_model_cannot_use_fails_the_start(
    tiny_model_dir: Path, parser: str, reason: str
) -> None:
    with pytest.raises(ValueError, match=f"engine.toolCallParser '{parser}' {reason}"):
        VLLMEngine(TokenizerOnly(tiny_model_dir), "tiny", False, parser)  # type: ignore[arg-type]
