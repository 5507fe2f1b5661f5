"""Parses a raw LLMDeployment or FineTuneJob spec into the strict model, with errors that name
the field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from kubellm_operator.api.finetunejob import FineTuneJobSpec
from kubellm_operator.api.llmdeployment import LLMDeploymentSpec

Spec = TypeVar("Spec", bound=BaseModel)


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


def _parse(model: type[Spec], raw: Mapping[str, Any] | None) -> Spec:
    try:
        return model.model_validate(dict(raw or {}))
    except ValidationError as exc:
        raise InvalidSpecError(_message(exc)) from exc


def parse_spec(raw: Mapping[str, Any] | None) -> LLMDeploymentSpec:
    return _parse(LLMDeploymentSpec, raw)


def parse_job_spec(raw: Mapping[str, Any] | None) -> FineTuneJobSpec:
    return _parse(FineTuneJobSpec, raw)
