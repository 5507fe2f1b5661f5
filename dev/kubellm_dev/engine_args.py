"""The operator's table of vLLM's engine arguments (``kubellm-dev engine-args write|check``),
generated from the installed vLLM's own parser through the runtime's vLLM module."""

from __future__ import annotations

import json
from pathlib import Path


def target(repo: Path) -> Path:
    return repo / "operator" / "kubellm_operator" / "data" / "vllm_engine_args.json"


def render() -> str:
    from kubellm_runtime.engine.vllm_engine import engine_arg_table  # noqa: PLC0415 - vLLM is slow to import

    return json.dumps(engine_arg_table(), indent=1, sort_keys=True) + "\n"
