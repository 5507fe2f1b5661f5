"""engine.extraArgs go through vLLM's own engine-argument parser in the runtime, and the
operator refuses what that parser would refuse before any cluster starts (its table comes
from the same parser and must match the installed vLLM)."""

from __future__ import annotations

from typing import Any

import pytest

from kubellm_dev import engine_args
from kubellm_dev.paths import REPO_ROOT
from kubellm_operator.api.base import InvalidSpecError
from kubellm_operator.api.llmdeployment import LLMDeploymentSpec
from kubellm_runtime.engine.base import InvalidEngineArgsError
from kubellm_runtime.engine.vllm_engine import parsed_extra_args


def test_the_operators_table_is_the_installed_vllms() -> None:
    assert engine_args.target(REPO_ROOT).read_text() == engine_args.render(), (
        "stale: run `kubellm-dev engine-args write`"
    )


def test_the_runtime_passes_typed_values_by_engine_field() -> None:
    parsed = parsed_extra_args(
        {
            "enforce-eager": "true",
            "max-num-batched-tokens": "4096",  # a string option stays one: no guessing
            "kv-cache-dtype": "fp8",
            "enable-chunked-prefill": "false",
            "seed": "7",
        }
    )
    assert parsed == {
        "enforce_eager": True,
        "max_num_batched_tokens": 4096,
        "kv_cache_dtype": "fp8",
        "enable_chunked_prefill": False,
        "seed": 7,
    }


# (extraArgs, what the runtime says, what the operator says)
REFUSED: list[tuple[dict[str, str], str, str]] = [
    (
        {"enforce-eagr": "true"},
        "enforce-eagr: not an engine argument of vLLM",
        "(did you mean enforce-eager?)",
    ),
    ({"enforce-eager": "yes"}, "must be true or false", "must be true or false"),
    ({"block-size": "big"}, "invalid", "must be an integer"),
    ({"kv-cache-dtype": "fp3"}, "invalid choice: 'fp3'", "must be one of auto"),
    ({"max-model-len": "4096"}, "set by spec.model.maxModelLen", "set by spec.model.maxModelLen"),
    (
        {"tensor-parallel-size": "2"},
        "set by spec.resources.tensorParallelSize",
        "set by spec.resources.tensorParallelSize",
    ),
]


@pytest.mark.parametrize(("extra", "runtime", "operator"), REFUSED)
def test_what_vllms_parser_refuses_is_refused_by_both_naming_the_option(
    extra: dict[str, str], runtime: str, operator: str
) -> None:
    with pytest.raises(InvalidEngineArgsError, match=r"engine\.extraArgs") as by_runtime:
        parsed_extra_args(extra)
    assert runtime in str(by_runtime.value)
    spec: dict[str, Any] = {"model": {"uri": "hf://a/b"}, "engine": {"extraArgs": extra}}
    with pytest.raises(InvalidSpecError, match=r"spec\.engine\.extraArgs") as by_operator:
        LLMDeploymentSpec.parse(spec)
    assert operator in str(by_operator.value)
    assert next(iter(extra)) in str(by_operator.value)
