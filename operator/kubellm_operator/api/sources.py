"""Model, adapter, dataset and output sources (DESIGN §3): the URI forms and the stores' naming
rules, written once for the API server (CEL) and the operator (the same regular expressions).

Refused by the API server already: a "." or ".." segment, backslashes, percent-escapes, "?",
"#" and whitespace, so no path built from a source can leave its root (the runtime checks the
same again); a ``pvc://`` claim that is not a Kubernetes object name; an ``s3://`` or ``gs://``
bucket its store would refuse.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, StringConstraints
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

_C = r"[^/\\%?#\s]"
_SEGMENT = rf"(?:[^/.\\%?#\s]{_C}*|\.[^/.\\%?#\s]{_C}*|\.\.{_C}+)"
SOURCE_URI = rf"^(hf|s3|gs|pvc|file)://(?:{_SEGMENT}|/{_SEGMENT})(?:/(?:{_SEGMENT})?)*$"
_END = "(/|$)"  # the end of the store's name: a path follows, or nothing
_IP = r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+" + _END


@dataclass(frozen=True)
class StoreRule:
    """One naming rule of a store, on the whole URI: it must (or must not) match ``pattern``.

    CEL's ``matches`` and Python's ``re.search`` both find the pattern anywhere unless it is
    anchored; every pattern here starts with ``^``. The expressions use only what RE2 (CEL)
    and Python's ``re`` read alike."""

    scheme: str
    pattern: str
    required: bool
    message: str

    def holds(self, uri: str) -> bool:
        if not uri.startswith(f"{self.scheme}://"):
            return True
        return bool(re.search(self.pattern, uri)) == self.required

    def to_crd(self) -> dict[str, str]:
        literal = self.pattern.replace("\\", "\\\\")
        test = f"self.matches('{literal}')"
        rule = f"!self.startsWith('{self.scheme}://') || {test if self.required else '!' + test}"
        return {"rule": rule, "message": self.message}


STORE_RULES = (
    StoreRule(
        "pvc",
        rf"^pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*{_END}",
        required=True,
        message="a pvc:// claim name (pvc://<claim>/<path>) must be a Kubernetes object name: "
        "lowercase letters, digits, '-' and '.', starting and ending with a letter or digit",
    ),
    StoreRule(
        "pvc",
        r"^pvc://[^/]{254}",
        required=False,
        message="a pvc:// claim name must be at most 253 characters",
    ),
    StoreRule(
        "s3",
        rf"^s3://[a-z0-9][a-z0-9.-]{{1,61}}[a-z0-9]{_END}",
        required=True,
        message="an s3:// bucket name must be 3-63 lowercase letters, digits, '.' and '-', "
        "starting and ending with a letter or digit",
    ),
    StoreRule(
        "s3",
        rf"^s3://([^/]*\.\.|{_IP}|xn--|sthree-|amzn-s3-demo-"
        rf"|[^/]*(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3){_END})",
        required=False,
        message="an s3:// bucket name has no '..', is not an IP address, does not start with "
        "xn--, sthree- or amzn-s3-demo-, and does not end with -s3alias, --ol-s3, .mrap, "
        "--x-s3 or --table-s3",
    ),
    StoreRule(
        "gs",
        rf"^gs://[a-z0-9][a-z0-9._-]{{1,220}}[a-z0-9]{_END}",
        required=True,
        message="a gs:// bucket name must be 3-222 lowercase letters, digits, '-', '_' and '.', "
        "starting and ending with a letter or digit",
    ),
    StoreRule(
        "gs",
        r"^gs://([^/]*\.)?[^./]{64}",
        required=False,
        message="a gs:// bucket name has at most 63 characters between dots",
    ),
    StoreRule(
        "gs",
        rf"^gs://({_IP}|goog|[^/]*(google|g00gle))",
        required=False,
        message="a gs:// bucket name is not an IP address, does not start with goog and does "
        "not contain google",
    ),
)


def store_problem(uri: str) -> str | None:
    """The first naming rule ``uri`` breaks, or None."""
    return next((rule.message for rule in STORE_RULES if not rule.holds(uri)), None)


class _StoreNames:
    """Annotated metadata: the store rules as CEL on the field, and as a check on parsing."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(_checked, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        out = handler(schema)
        out["x-kubernetes-validations"] = [rule.to_crd() for rule in STORE_RULES]
        return out


def _checked(uri: str) -> str:
    problem = store_problem(uri)
    if problem is not None:
        raise ValueError(problem)
    return uri


SourceUri = Annotated[str, StringConstraints(pattern=SOURCE_URI, max_length=2048), _StoreNames()]


def pvc_claims(fields: Iterable[tuple[str, str | None]]) -> dict[str, tuple[str, ...]]:
    """The PersistentVolumeClaims that ``pvc://<claim>/<path>`` sources name: claim → the
    fields naming it, in the order given (the operator checks they exist, the builders mount
    them)."""
    found: dict[str, tuple[str, ...]] = {}
    for path, uri in fields:
        if uri and uri.startswith("pvc://"):
            claim = urlsplit(uri).netloc
            found[claim] = (*found.get(claim, ()), path)
    return found
