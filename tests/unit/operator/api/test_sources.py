"""Sources follow their stores' naming rules at parse time (the same rules are the CRD's CEL,
which tests/e2e/test_llmdeployment_validation.py proves on the real API server with these
cases): a claim or bucket its store would refuse never becomes a pod volume or a download."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from kubellm_operator.api.base import InvalidSpecError
from kubellm_operator.api.llmdeployment import LLMDeploymentSpec
from kubellm_operator.api.sources import STORE_RULES, store_problem
from kubellm_operator.crds import rendered

ACCEPTED = [
    "pvc://models/llama",
    "pvc://models.v1/llama-3",
    f"pvc://{'a' * 253}/x",
    "s3://abc/x",
    "s3://my.bucket-1/models/llama",
    f"s3://{'b' * 63}/x",
    "s3://bucket",
    "gs://my_bucket/llama",
    "gs://a.b-c_d/x",
    f"gs://{'c' * 63}.{'d' * 63}/x",
    "hf://meta-llama/Llama-3.1-8B-Instruct",
    "file:///models/llama",
]
# (uri, what the refusal says)
REFUSED = [
    ("pvc://My_Claim/model", "pvc:// claim name (pvc://<claim>/<path>) must be"),
    ("pvc://-claim/model", "pvc:// claim name (pvc://<claim>/<path>) must be"),
    ("pvc://claim./model", "pvc:// claim name (pvc://<claim>/<path>) must be"),
    (f"pvc://{'a' * 254}/x", "claim name must be at most 253 characters"),
    ("s3://ab/x", "s3:// bucket name must be 3-63"),
    (f"s3://{'b' * 64}/x", "s3:// bucket name must be 3-63"),
    ("s3://My-Bucket/x", "s3:// bucket name must be 3-63"),
    ("s3://bucket_1/x", "s3:// bucket name must be 3-63"),
    ("s3://bucket-/x", "s3:// bucket name must be 3-63"),
    ("s3://my..bucket/x", "s3:// bucket name has no '..'"),
    ("s3://192.168.5.4/x", "is not an IP address"),
    ("s3://xn--bucket/x", "does not start with"),
    ("s3://bucket-s3alias/x", "does not end with"),
    ("gs://ab/x", "gs:// bucket name must be 3-222"),
    ("gs://bucket_/x", "gs:// bucket name must be 3-222"),
    (f"gs://{'c' * 64}/x", "at most 63 characters between dots"),
    (f"gs://a.{'c' * 64}/x", "at most 63 characters between dots"),
    ("gs://goog-models/x", "does not start with goog"),
    ("gs://my-google-models/x", "does not contain google"),
    ("gs://10.0.0.1/x", "is not an IP address"),
]


@pytest.mark.parametrize("uri", ACCEPTED)
def test_names_the_stores_accept_are_accepted(uri: str) -> None:
    assert store_problem(uri) is None
    LLMDeploymentSpec.parse({"model": {"uri": uri}})


@pytest.mark.parametrize(("uri", "message"), REFUSED)
def test_names_a_store_would_refuse_are_refused_naming_the_field(uri: str, message: str) -> None:
    assert message in (store_problem(uri) or "")
    with pytest.raises(InvalidSpecError, match=r"spec\.model\.uri") as caught:
        LLMDeploymentSpec.parse({"model": {"uri": uri}})
    assert message in str(caught.value)
    with pytest.raises(InvalidSpecError, match=r"spec\.adapterSources\.0"):
        LLMDeploymentSpec.parse({"model": {"uri": "hf://a/b"}, "adapterSources": [uri]})


def _carrying(node: Any, rules: list[dict[str, str]]) -> int:
    """How many schema nodes under ``node`` carry every one of ``rules``."""
    if isinstance(node, list):
        return sum(_carrying(item, rules) for item in node)
    if not isinstance(node, dict):
        return 0
    here = all(rule in node.get("x-kubernetes-validations", []) for rule in rules)
    return int(here) + sum(_carrying(value, rules) for value in node.values())


@pytest.mark.parametrize(
    ("crd", "fields"), [("kubellm.io_llmdeployments.yaml", 3), ("kubellm.io_finetunejobs.yaml", 3)]
)
def test_every_source_field_of_the_crds_carries_every_rule(crd: str, fields: int) -> None:
    """model.uri, adapters[].uri, adapterSources[]; baseModel.uri, dataset.uri, output.uri."""
    schema = yaml.safe_load(rendered()[crd])
    assert _carrying(schema, [rule.to_crd() for rule in STORE_RULES]) == fields
