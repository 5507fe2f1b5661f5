"""Compact in-memory copies of JSON objects: what the operator keeps per object, packed.

A status or a body as Python dicts costs several KB each (every key, string and dict is an
object); as compressed canonical JSON it is a few hundred bytes. Packing is deterministic
(sorted keys), so two equal objects pack to equal bytes and can be compared packed.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from typing import Any


def pack(obj: Mapping[str, Any]) -> bytes:
    wire = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    return zlib.compress(wire, 1)


def unpack(packed: bytes) -> dict[str, Any]:
    return dict(json.loads(zlib.decompress(packed)))
