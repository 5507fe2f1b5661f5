"""Tool calls: what a request's tools and tool_choice ask of the engine, and the calls read
back from its text.

* ``tool_choice: "none"`` (or no tools): a plain chat.
* ``"required"`` or a named function: the output is constrained to JSON (the engine's
  structured outputs) — an array of ``{name, parameters}`` for required, the function's
  arguments for a named one — and read back as tool calls. Works on any model.
* ``"auto"`` (the default with tools): the model decides; the deployment's tool-call parser
  (``spec.engine.toolCallParser``, vLLM's parsers) reads the calls from its text. Without one,
  a 400 naming ``tools``.

Streamed, a tool-using choice's text is held back until it ends (calls can only be read from
a whole answer); its calls then arrive as ``tool_calls`` deltas, or its text as one content
delta when it holds no call.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from kubellm_runtime.engine.base import ParsedTools, Structured, ToolCall
from kubellm_runtime.openai.errors import ApiError
from kubellm_runtime.openai.options import Tool

Mode = Literal["auto", "required", "named"]


@dataclass(frozen=True)
class ToolUse:
    """How one request uses its tools."""

    mode: Mode
    tools: tuple[dict[str, Any], ...]
    """As the chat template and the parser take them (OpenAI's shape)."""
    name: str | None = None
    """The function a named tool_choice forces."""
    parallel: bool = True
    """parallel_tool_calls: false allows one call per answer."""

    def structured(self) -> Structured | None:
        if self.mode == "required":
            schema = _calls_schema(self.tools)
            if not self.parallel:
                schema["maxItems"] = 1
            return Structured("json_schema", json.dumps(schema))
        if self.mode == "named":
            function = next(t["function"] for t in self.tools if t["function"]["name"] == self.name)
            schema = function.get("parameters") or {"type": "object"}
            return Structured("json_schema", json.dumps(schema))
        return None

    def read(self, text: str, parsed: ParsedTools | None) -> ParsedTools:
        """The calls in an answer (an unparsable one stays text: nothing is invented)."""
        if self.mode == "auto":
            return parsed or ParsedTools(text, ())
        try:
            value = json.loads(text)
        except ValueError:
            return ParsedTools(text, ())
        if self.mode == "named":
            return ParsedTools(None, (ToolCall(str(self.name), json.dumps(value)),))
        calls = tuple(
            ToolCall(str(c["name"]), json.dumps(c.get("parameters", {})))
            for c in value
            if isinstance(c, dict) and "name" in c
        )
        return ParsedTools(None, calls) if calls else ParsedTools(text, ())


def tool_use(
    tools: list[Tool] | None,
    choice: str | dict[str, Any] | None,
    *,
    has_format: bool,
    parses: bool,
    parallel: bool = True,
) -> ToolUse | None:
    """The request's tool use, or a 400 naming what cannot be honoured."""
    if not tools or choice == "none":
        return None
    wire = tuple(t.model_dump(mode="json", exclude_none=True) for t in tools)
    if has_format:
        raise ApiError(
            400, "response_format: cannot be combined with tools", param="response_format"
        )
    if choice in (None, "auto"):
        if not parses:
            raise ApiError(
                400,
                "tools: this deployment names no tool-call parser (spec.engine.toolCallParser); "
                'send tool_choice: "required", a named function, or "none"',
                param="tools",
            )
        return ToolUse("auto", wire, parallel=parallel)
    if choice == "required":
        return ToolUse("required", wire, parallel=parallel)
    name = _named(choice)
    if name not in {t.function.name for t in tools}:
        raise ApiError(400, f"tool_choice: no tool named {name!r}", param="tool_choice")
    return ToolUse("named", wire, name)


def _named(choice: object) -> str:
    function = choice.get("function") if isinstance(choice, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(choice, dict) or choice.get("type") != "function" or not name:
        raise ApiError(
            400,
            'tool_choice: "none", "auto", "required" or {"type": "function", '
            '"function": {"name": ...}}',
            param="tool_choice",
        )
    return str(name)


def _calls_schema(tools: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    """A non-empty JSON array of calls, each naming one of the tools with its arguments."""
    return {
        "type": "array",
        "minItems": 1,
        "items": {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {
                        "name": {"const": t["function"]["name"]},
                        "parameters": t["function"].get("parameters") or {"type": "object"},
                    },
                    "required": ["name", "parameters"],
                }
                for t in tools
            ]
        },
    }


class FunctionOut(BaseModel):
    name: str
    arguments: str


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionOut


class ToolCallDelta(ToolCallOut):
    """A call in a stream: its position among the choice's calls, sent whole."""

    index: int


def tool_calls_out(calls: tuple[ToolCall, ...]) -> list[ToolCallOut]:
    return [
        ToolCallOut(
            id=f"call_{uuid.uuid4().hex[:24]}",
            function=FunctionOut(name=c.name, arguments=c.arguments),
        )
        for c in calls
    ]


def tool_call_deltas(calls: list[ToolCallOut]) -> list[ToolCallDelta]:
    return [ToolCallDelta(index=i, **call.model_dump()) for i, call in enumerate(calls)]
