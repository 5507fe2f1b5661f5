"""The error every layer raises for the client (status, message and OpenAI's error fields),
and how it is answered: OpenAI's error body, with Retry-After on 429 and 503."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

TOO_MANY_REQUESTS = 429
UNAVAILABLE = 503
NAMED = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*): ")


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error body: ``{"error": {"message", "type", "param", "code"}}``."""

    error: ErrorDetail


@dataclass
class ApiError(Exception):
    """An error the client caused (4xx) or should retry (429/503), in OpenAI's shape."""

    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None

    def __str__(self) -> str:
        return self.message


def error_body(error: ApiError) -> ErrorResponse:
    """OpenAI's error shape, for answers and for a stream's last frame alike."""
    detail = ErrorDetail(message=error.message, type=error.type, param=error.param, code=error.code)
    return ErrorResponse(error=detail)


def error_response(error: ApiError, retry_after_s: int = 1) -> JSONResponse:
    body = error_body(error)
    retry = error.status in {TOO_MANY_REQUESTS, UNAVAILABLE}
    headers = {"Retry-After": str(retry_after_s)} if retry else None
    return JSONResponse(body.model_dump(), status_code=error.status, headers=headers)


def validation_error(exc: RequestValidationError) -> ApiError:
    first: dict[str, Any] = exc.errors()[0]
    if first.get("type") == "json_invalid":
        return ApiError(400, "The request body is not valid JSON.", code="invalid_json")
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(loc) or None
    message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
    if named := NAMED.match(message):  # a rule across fields names the field it is about
        param = f"{param}.{named.group(1)}" if param else named.group(1)
        message = message[named.end() :]
    return ApiError(400, f"{param}: {message}" if param else message, param=param)
