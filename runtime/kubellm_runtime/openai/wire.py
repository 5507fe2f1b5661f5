"""What every request body must be before its own fields are checked: valid Unicode text.

JSON lets a client send a lone surrogate (``"\\ud800"``); Python decodes it into a string that
cannot be encoded again, so it would fail deep in tokenization or logging as a 500. It is
refused here, with the field's path, before anything uses it.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Strict, StrictBool, StrictInt, model_validator

MAX_DEPTH = 32

# Strict scalars: "yes" is not a bool and "4" is not a number (OpenAI refuses them too); an
# integer is still a valid float.
Number = Annotated[float, Strict()]
Integer = StrictInt
Flag = StrictBool


def unencodable(value: Any, path: str = "", depth: int = 0) -> str | None:
    """The path of the first string (key or value) that is not valid Unicode, if any."""
    if depth > MAX_DEPTH:
        return path or "body"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "body"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if (bad := unencodable(key, where, depth + 1)) or (
                bad := unencodable(item, where, depth + 1)
            ):
                return bad
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if bad := unencodable(item, f"{path}.{index}" if path else str(index), depth + 1):
                return bad
    return None


class ClientModel(BaseModel):
    """Base of the request bodies: text that is not valid Unicode is a 400 naming the field."""

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        if (where := unencodable(data)) is not None:
            raise ValueError(f"{where}: not valid Unicode text (an unpaired surrogate)")
        return data
