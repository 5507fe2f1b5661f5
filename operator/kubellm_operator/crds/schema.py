"""Generates the CRDs from the API models: structural OpenAPI v3 schema, CEL, columns, scale."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from kubellm_operator import names
from kubellm_operator.crds import yamlio

# Keys of pydantic's JSON schema that have no place in a structural Kubernetes schema.
_DROPPED = {"title", "$defs", "additionalProperties"}


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    type: str
    json_path: str
    description: str
    priority: int = 0

    def to_crd(self) -> dict[str, Any]:
        column: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "jsonPath": self.json_path,
            "description": self.description,
        }
        if self.priority:
            column["priority"] = self.priority
        return column


@dataclass(frozen=True)
class ResourceDefinition:
    """Everything that makes one CRD, besides the models."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    description: str
    spec: type[BaseModel]
    status: type[BaseModel]
    columns: tuple[PrinterColumn, ...]
    scale: bool = False
    categories: tuple[str, ...] = ("kubellm",)


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    target = dict(defs[ref.rsplit("/", 1)[-1]])
    siblings = {k: v for k, v in schema.items() if k != "$ref"}
    return {**target, **siblings}


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _key_rule(condition: str, message: str) -> dict[str, str]:
    return {"rule": f"self.all(k, {condition})", "message": message}


def _unwrap_optional(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    schema = _resolve(schema, defs)
    if "anyOf" not in schema:
        return schema
    branches = [b for b in schema["anyOf"] if b.get("type") != "null"]
    if len(branches) != 1:
        raise ValueError(f"unions other than Optional[X] cannot be expressed: {schema}")
    outer = {k: v for k, v in schema.items() if k != "anyOf"}
    return {**_resolve(branches[0], defs), **outer}


def _convert(
    key: str, value: Any, defs: dict[str, Any], rules: list[dict[str, str]]
) -> dict[str, Any]:
    """The structural form of one keyword of a JSON schema node."""
    converted: dict[str, Any]
    match key:
        case "properties":
            converted = {key: {name: structural(sub, defs) for name, sub in value.items()}}
        case "items":
            converted = {key: structural(value, defs)}
        case "exclusiveMinimum" | "exclusiveMaximum":
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            converted = {bound: value, key: True}  # OpenAPI v3.0 form
        case "const":
            converted = {"enum": [value]}
        case "patternProperties":
            # No patternProperties in Kubernetes schemas: one value schema, keys checked by CEL.
            ((pattern, sub),) = value.items()
            rules.append(_key_rule(f"k.matches('{pattern}')", f"keys must match {pattern}"))
            converted = {"additionalProperties": structural(sub, defs)}
        case "propertyNames":
            if "maxLength" in value:
                limit = value["maxLength"]
                rules.append(
                    _key_rule(f"size(k) <= {limit}", f"keys must be at most {limit} characters")
                )
            converted = {}
        case _:
            converted = {key: value}
    return converted


def structural(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Turn one pydantic JSON schema node into a structural Kubernetes schema node."""
    schema = _unwrap_optional(schema, defs)
    out: dict[str, Any] = {}
    rules: list[dict[str, str]] = []
    for key, value in schema.items():
        if key not in _DROPPED and not (key == "default" and value is None):
            out.update(_convert(key, value, defs, rules))

    extra = schema.get("additionalProperties")
    free_form = not ({"properties", "patternProperties"} & schema.keys())
    if extra is True or (schema.get("type") == "object" and not extra and free_form):
        out["x-kubernetes-preserve-unknown-fields"] = True
    elif isinstance(extra, dict):
        out["additionalProperties"] = structural(extra, defs)
    if rules:
        out["x-kubernetes-validations"] = [*out.get("x-kubernetes-validations", []), *rules]
    if isinstance(out.get("default"), dict):
        # The API server validates defaults (CEL included) as written, without nested defaulting,
        # so object defaults are spelled out in full; unset optional fields are left out.
        out["default"] = _without_nulls(out["default"])
    if out.get("type") == "integer":
        out.setdefault("format", "int64")
    return out


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return structural(raw, raw.get("$defs", {}))


def crd(resource: ResourceDefinition) -> dict[str, Any]:
    spec_schema = model_schema(resource.spec)
    status_schema = model_schema(resource.status)
    version: dict[str, Any] = {
        "name": names.VERSION,
        "served": True,
        "storage": True,
        "subresources": {"status": {}},
        "additionalPrinterColumns": [c.to_crd() for c in resource.columns],
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "description": resource.description,
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                    "spec": spec_schema,
                    "status": status_schema,
                },
                "required": ["spec"],
            }
        },
    }
    if resource.scale:
        version["subresources"]["scale"] = {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{resource.plural}.{names.GROUP}"},
        "spec": {
            "group": names.GROUP,
            "names": {
                "kind": resource.kind,
                "listKind": f"{resource.kind}List",
                "plural": resource.plural,
                "singular": resource.kind.lower(),
                "shortNames": list(resource.short_names),
                "categories": list(resource.categories),
            },
            "scope": "Namespaced",
            "versions": [version],
        },
    }


def render(resource: ResourceDefinition) -> str:
    header = "# Generated from the pydantic models in kubellm_operator.api; do not edit.\n"
    header += "# Regenerate with: python -m kubellm_operator.crds write\n"
    return header + yamlio.dump(crd(resource), sort_keys=False)
