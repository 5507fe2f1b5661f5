"""YAML output for humans: block scalars for multi-line strings, no anchors, stable key order."""

from __future__ import annotations

from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(document: Any, *, sort_keys: bool = True) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=sort_keys, width=100)


def dump_all(documents: list[Any], *, sort_keys: bool = True) -> str:
    return yaml.dump_all(documents, Dumper=_Dumper, sort_keys=sort_keys, width=100)
