"""Base of every API model: strict, frozen, camelCase, with cross-field rules written once.

A cross-field rule is declared once as a :class:`Rule`: its CEL expression goes into the CRD
(``x-kubernetes-validations``, so ``kubectl apply`` rejects the object) and its Python check
runs when the operator parses an object (which catches specs admitted by an older CRD).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    GetJsonSchemaHandler,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema


class InvalidSpecError(ValueError):
    """The spec breaks a rule; the message names the field and the rule."""


def _message(error: ValidationError, root: str) -> str:
    problems = []
    for item in error.errors():
        path = [root, *(str(p) for p in item["loc"])]
        text = item["msg"].removeprefix("Value error, ")
        # Cross-field rules name their field first ("gpusPerReplica: ..."): move it into the path.
        field, sep, rest = text.partition(": ")
        if sep and all(part.isidentifier() for part in field.split(".")):
            path.append(field)
            text = rest
        problems.append(f"{'.'.join(path)}: {text}")
    return "; ".join(problems)


@dataclass(frozen=True)
class Rule:
    """A cross-field constraint: CEL for the API server, a predicate for the operator."""

    cel: str
    message: str
    check: Callable[[Any], bool]
    field_path: str | None = None

    def to_crd(self) -> dict[str, str]:
        rule = {"rule": self.cel, "message": self.message}
        if self.field_path:
            rule["fieldPath"] = self.field_path
        return rule


class ApiModel(BaseModel):
    """Strict (typos fail), frozen, camelCase on the wire, descriptions for `kubectl explain`."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )

    rules: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        for rule in type(self).rules:
            if not rule.check(self):
                where = f"{rule.field_path.lstrip('.')}: " if rule.field_path else ""
                raise ValueError(f"{where}{rule.message}")
        return self

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        if cls.rules:
            target = handler.resolve_ref_schema(schema)
            target["x-kubernetes-validations"] = [r.to_crd() for r in cls.rules]
        return schema

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None, root: str = "spec") -> Self:
        """An object's ``root`` field as this model, or InvalidSpecError naming each field
        at fault (``spec.replicas: ...``) and the rule it breaks."""
        try:
            return cls.model_validate(dict(raw or {}))
        except ValidationError as exc:
            raise InvalidSpecError(_message(exc, root)) from exc

    def to_wire(self) -> dict[str, Any]:
        """The object as it appears in YAML: camelCase, unset optional fields omitted."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")
