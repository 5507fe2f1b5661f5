"""PersistentVolumeClaims a spec names (``pvc://<claim>/<path>``), each with the field that
names it: the operator checks they exist before it creates a child that would mount them, so
a missing claim is a condition naming it instead of a Ray cluster that never starts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from kubellm_operator.api.finetunejob import FineTuneJobSpec
from kubellm_operator.api.llmdeployment import LLMDeploymentSpec

CLAIM_NOT_FOUND = "ClaimNotFound"


def _named(fields: Iterable[tuple[str, str | None]]) -> dict[str, str]:
    """Claim → the first field naming it."""
    found: dict[str, str] = {}
    for path, uri in fields:
        if uri and uri.startswith("pvc://"):
            found.setdefault(urlsplit(uri).netloc, path)
    return found


def deployment_claims(spec: LLMDeploymentSpec) -> dict[str, str]:
    return _named(
        [
            ("spec.model.uri", spec.model.uri),
            *((f"spec.adapters[{i}].uri", a.uri) for i, a in enumerate(spec.adapters)),
            *((f"spec.adapterSources[{i}]", s) for i, s in enumerate(spec.adapter_sources)),
        ]
    )


def job_claims(spec: FineTuneJobSpec) -> dict[str, str]:
    return _named(
        [
            ("spec.baseModel.uri", spec.base_model.uri),
            ("spec.dataset.uri", spec.dataset.uri),
            ("spec.output.uri", spec.output.uri),
        ]
    )


def missing_message(missing: Mapping[str, str], namespace: str) -> str:
    named = ", ".join(f"{claim} ({field})" for claim, field in sorted(missing.items()))
    noun = "PersistentVolumeClaim" if len(missing) == 1 else "PersistentVolumeClaims"
    return f"{noun} {named} not found in namespace {namespace}; waiting for it to be created"
