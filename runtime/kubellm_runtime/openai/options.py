"""Request options beyond plain sampling: content parts, response_format, tools, logit_bias.

Each is checked like every other field (a 400 naming it); the OpenAI parameters the runtime
does not implement are refused by name, never accepted and silently ignored.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator

from kubellm_runtime.openai.wire import ClientModel, Flag, Number

MAX_SCHEMA_BYTES = 64 * 1024
MAX_TOOLS = 128
MAX_LOGIT_BIAS = 300  # OpenAI's own limit


class _Option(ClientModel):
    model_config = ConfigDict(extra="ignore")


class TextPart(_Option):
    """A text part of a message's content (OpenAI's list form)."""

    type: Literal["text"]
    text: str


class JsonSchema(_Option):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    schema_: dict[str, Any] = Field(alias="schema")
    strict: Flag | None = None

    @field_validator("schema_")
    @classmethod
    def _bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value)) > MAX_SCHEMA_BYTES:
            raise ValueError(f"a JSON schema of at most {MAX_SCHEMA_BYTES} bytes")
        return value


class ResponseFormat(_Option):
    """text (the default), json_object (any JSON object) or json_schema (that schema)."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchema | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("json_schema: required when type is json_schema")
        return self

    def schema_text(self) -> str | None:
        return json.dumps(self.json_schema.schema_) if self.json_schema else None


class FunctionSpec(_Option):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(_Option):
    type: Literal["function"]
    function: FunctionSpec


class CalledFunction(_Option):
    name: str = Field(max_length=64)
    arguments: str = Field(max_length=MAX_SCHEMA_BYTES)


class ToolCallIn(_Option):
    """A call an earlier assistant turn made (sent back with the conversation)."""

    id: str = Field(max_length=256)
    type: Literal["function"] = "function"
    function: CalledFunction

    def for_template(self) -> dict[str, Any]:
        try:
            arguments: Any = json.loads(self.function.arguments)
        except ValueError:
            arguments = self.function.arguments
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.function.name, "arguments": arguments},
        }


def logit_bias_of(value: dict[str, Number] | None) -> tuple[tuple[int, float], ...]:
    """OpenAI's logit_bias (token id as a string → bias) as pairs, checked."""
    if not value:
        return ()
    if len(value) > MAX_LOGIT_BIAS:
        raise ValueError(f"at most {MAX_LOGIT_BIAS} entries")
    pairs = []
    for key, bias in value.items():
        if not key.isdigit():
            raise ValueError(f"{key!r} is not a token id")
        if not -100 <= bias <= 100:  # noqa: PLR2004
            raise ValueError("a bias lies between -100 and 100")
        pairs.append((int(key), float(bias)))
    return tuple(pairs)
