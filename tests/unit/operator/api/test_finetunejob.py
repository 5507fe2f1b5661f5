"""FineTuneJob models accept what users write and reject bad specs naming field and rule (the
same cases `kubectl apply` refuses through the CRD: tests/e2e/test_finetunejob_validation.py)."""

from __future__ import annotations

from typing import Any

import pytest

from kubellm_operator.api.base import InvalidSpecError
from kubellm_operator.api.finetunejob import FineTuneJobSpec

BASE: dict[str, Any] = {
    "baseModel": {"uri": "pvc://models/smollm2"},
    "dataset": {"uri": "pvc://data/train.jsonl", "format": "instruction"},
    "output": {"uri": "pvc://adapters/out"},
}


def spec(**overrides: Any) -> dict[str, Any]:
    return {**BASE, **overrides}


@pytest.mark.parametrize(
    "raw",
    [
        BASE,
        spec(baseModel={"uri": "hf://HuggingFaceTB/SmolLM2-135M-Instruct", "revision": "main"}),
        spec(baseModel={"uri": "s3://models-bucket/smollm2"}),
        spec(dataset={"uri": "gs://data-bucket/chat.jsonl", "format": "chat"}),
        spec(dataset={"uri": "file:///data/train.jsonl", "format": "text", "textField": "body"}),
        spec(output={"uri": "s3://adapters-bucket/out", "adapterName": "sql-v2"}),
        spec(method="qlora", resources={"gpusPerWorker": 1}),
        spec(resources={"gpusPerWorker": 0, "workers": 2}),
        spec(hyperparameters={"loraR": 8, "loraAlpha": 16, "fp16": False, "bf16": True}),
        spec(deployTo="smollm2", suspend=True, backoffLimit=0, ttlSecondsAfterFinished=0),
    ],
)
def test_valid_specs_are_accepted(raw: dict[str, Any]) -> None:
    FineTuneJobSpec.parse(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            spec(dataset={"uri": "pvc://Training_Data/x.jsonl", "format": "text"}),
            "spec.dataset.uri: a pvc:// claim name",
        ),
        (spec(output={"uri": "s3://ab/adapters"}), "spec.output.uri: an s3:// bucket name"),
        (
            spec(dataset={"uri": "pvc://data/x.jsonl", "format": "csv"}),
            "spec.dataset.format: Input should be 'text', 'instruction' or 'chat'",
        ),
        (spec(dataset={"uri": "ftp://host/x.jsonl"}), "spec.dataset.uri: String should match"),
        (
            spec(dataset={"uri": "pvc://data/../../etc/passwd"}),
            "spec.dataset.uri: String should match",
        ),
        ({k: v for k, v in BASE.items() if k != "baseModel"}, "spec.baseModel: Field required"),
        (spec(output={"uri": "hf://me/adapter"}), "spec.output.uri: the adapter is written to"),
        (
            spec(method="qlora", resources={"gpusPerWorker": 0}),
            "spec.method: qlora needs GPU workers",
        ),
        (
            spec(hyperparameters={"fp16": True, "bf16": True}),
            "spec.hyperparameters.bf16: set at most one of fp16 and bf16",
        ),
        (
            spec(hyperparameters={"loraR": 0}),
            "spec.hyperparameters.loraR: Input should be greater than or equal to 1",
        ),
        (
            spec(hyperparameters={"loraDropout": 1}),
            "spec.hyperparameters.loraDropout: Input should be less than 1",
        ),
        (
            spec(hyperparameters={"learningRat": 0.1}),
            "spec.hyperparameters.learningRat: Extra inputs are not permitted",
        ),
        (spec(method="full"), "spec.method: Input should be 'lora' or 'qlora'"),
        (
            spec(resources={"workers": 0}),
            "spec.resources.workers: Input should be greater than or equal to 1",
        ),
        (spec(backoffLimit=-1), "spec.backoffLimit: Input should be greater than or equal to 0"),
        (spec(deployTo="Not_A_Name"), "spec.deployTo: String should match pattern"),
        (
            spec(output={"uri": "pvc://adapters/out", "adapterName": "has space"}),
            "spec.output.adapterName: String should match pattern",
        ),
        (spec(suspnd=True), "spec.suspnd: Extra inputs are not permitted"),
    ],
)
def test_invalid_specs_are_rejected_naming_the_field(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSpecError, match="^" + message.replace("(", r"\(")):
        FineTuneJobSpec.parse(raw)


def test_the_claims_a_job_names_each_say_which_fields_name_them() -> None:
    job = FineTuneJobSpec.parse(
        spec(dataset={"uri": "pvc://models/data.jsonl"}, output={"uri": "pvc://out/a"})
    )
    assert job.claims == {
        "models": ("spec.baseModel.uri", "spec.dataset.uri"),
        "out": ("spec.output.uri",),
    }


def test_models_are_frozen() -> None:
    job = FineTuneJobSpec.parse(BASE)
    with pytest.raises(ValueError, match="frozen"):
        job.suspend = True  # type: ignore[misc]
