"""Parses a raw LLMDeployment spec into the strict model, with errors that name the field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from kubellm_operator.api.llmdeployment import LLMDeploymentSpec


class InvalidSpecError(ValueError):
    """The spec breaks a rule; the message names the field and the rule."""


def _message(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        path = ["spec", *(str(p) for p in item["loc"])]
        text = item["msg"].removeprefix("Value error, ")
        # Cross-field rules name their field first ("gpusPerReplica: ..."): move it into the path.
        field, sep, rest = text.partition(": ")
        if sep and all(part.isidentifier() for part in field.split(".")):
            path.append(field)
            text = rest
        problems.append(f"{'.'.join(path)}: {text}")
    return "; ".join(problems)


def parse_spec(raw: Mapping[str, Any] | None) -> LLMDeploymentSpec:
    try:
        return LLMDeploymentSpec.model_validate(dict(raw or {}))
    except ValidationError as exc:
        raise InvalidSpecError(_message(exc)) from exc
