"""``engine.extraArgs`` checked against vLLM's own engine arguments when the operator parses a
spec: an unknown or misspelled option, one the spec sets through its own fields, or a value of
the wrong kind is an InvalidSpec naming the option, before any Ray cluster starts.

The table (``data/vllm_engine_args.json``) is generated from vLLM's parser by `kubellm-dev
engine-args write` (the operator image carries no vLLM), and a unit test fails when it differs
from the installed vLLM's. The runtime parses the same arguments with that parser again.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

TABLE = "data/vllm_engine_args.json"


@cache
def table() -> dict[str, Any]:
    text = resources.files("kubellm_operator").joinpath(TABLE).read_text()
    return dict(json.loads(text))


def _value_problem(option: Mapping[str, Any], value: str) -> str | None:
    kind = option["kind"]
    if kind == "flag" and value.strip().lower() not in {"true", "false"}:
        return f"must be true or false, not {value!r}"
    if kind in ("int", "float"):
        try:
            int(value) if kind == "int" else float(value)
        except ValueError:
            return f"must be {'an integer' if kind == 'int' else 'a number'}, not {value!r}"
    if kind == "choice" and value not in option["choices"]:
        return f"must be one of {', '.join(option['choices'])}; not {value!r}"
    return None


def problem(extra: Mapping[str, str]) -> str | None:
    """What is wrong with the first bad engine argument, naming it; None when all are fine."""
    known = table()
    options, reserved = known["options"], known["reserved"]
    for key, value in sorted(extra.items()):
        name = key.replace("_", "-")
        if name in reserved:
            return f"{key}: set by {reserved[name]}, not by extraArgs"
        option = options.get(name)
        if option is None:
            close = difflib.get_close_matches(name, list(options), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            return f"{key}: not an engine argument of vLLM {known['vllm']}{hint}"
        if (wrong := _value_problem(option, value)) is not None:
            return f"{key}: {wrong}"
    return None
