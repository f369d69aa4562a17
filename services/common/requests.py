"""Turning request input into validated models; every failure is a 400 naming the field."""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from services.common.errors import FieldError, ProblemError, field_errors

M = TypeVar("M", bound=BaseModel)

MAX_BODY_BYTES = 64 * 1024


async def read_body(request: web.Request, model: type[M]) -> M:
    """Validate the JSON body against `model` (strict types: "5" is not a number)."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ProblemError(413, f"body larger than {MAX_BODY_BYTES} bytes")
    raw = await request.read()
    if not raw.strip():
        raise ProblemError(400, "a JSON body is required", errors=[_body_error("body is empty")])
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        raise ProblemError(400, "request validation failed", errors=field_errors(exc)) from None


def path_text(request: web.Request, name: str, max_length: int) -> str:
    """A path parameter as text the database can store, or a 400 naming it."""
    value = request.match_info[name]
    if len(value) > max_length or "\x00" in value:
        raise ProblemError(
            400,
            f"invalid {name}",
            errors=[FieldError(field=name, message=f"1..{max_length} characters, no NUL")],
        )
    return value


def _body_error(message: str) -> FieldError:
    return FieldError(field="body", message=message)
