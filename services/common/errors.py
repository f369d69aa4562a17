"""RFC 9457 problem+json for every error, and the middleware that guarantees it.

Whatever a handler raises, the client gets a problem document: field-level details for
validation errors, the status of an HTTP exception, a 503 with `Retry-After` when the
database connection is down, and a bare 500 without internals for anything unexpected (the
traceback goes to the log, never to the client).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from services.common.db_errors import database_unavailable

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DATABASE_UNAVAILABLE_DETAIL = "the database is unavailable; try again"


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = None


class ProblemError(Exception):
    """Raise from a handler to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        errors: Sequence[FieldError] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or HTTPStatus(status).phrase)
        self.status = status
        self.detail = detail
        self.errors = list(errors)
        self.headers = headers or {}


def problem_response(
    status: int,
    detail: str | None = None,
    errors: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = Problem(
        title=HTTPStatus(status).phrase, status=status, detail=detail, errors=list(errors) or None
    )
    return web.Response(
        status=status,
        text=body.model_dump_json(exclude_none=True),
        content_type=PROBLEM_JSON,
        headers=headers,
    )


def field_errors(exc: ValidationError) -> list[FieldError]:
    """One entry per bad field, named by its JSON path (`items.0.qty`); `body` for the whole."""
    result = []
    for err in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in err["loc"]) or "body"
        message = "body is not valid JSON" if err["type"] == "json_invalid" else err["msg"]
        result.append(FieldError(field=field, message=message))
    return result


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ProblemError as exc:
        return problem_response(exc.status, exc.detail, exc.errors, exc.headers)
    except ValidationError as exc:
        return problem_response(400, "request validation failed", field_errors(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # Keep headers such as Allow on 405, drop the plain-text body aiohttp would send.
        headers = {k: v for k, v in exc.headers.items() if k.lower() not in _BODY_HEADERS}
        return problem_response(exc.status, exc.reason, headers=headers)
    except Exception as exc:
        if not database_unavailable(exc):
            return _internal_error(request)
        log.warning(
            "database unavailable: %r", exc, extra={"path": request.path, "method": request.method}
        )
        return problem_response(503, DATABASE_UNAVAILABLE_DETAIL, headers={"Retry-After": "1"})


def _internal_error(request: web.Request) -> web.Response:
    log.exception("unhandled error", extra={"path": request.path, "method": request.method})
    return problem_response(500, "internal error")


_BODY_HEADERS = {"content-type", "content-length"}


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """Serialise pydantic models (by alias) or plain JSON values."""
    text: str
    if isinstance(payload, BaseModel):
        text = payload.model_dump_json(by_alias=True)
    elif isinstance(payload, list) and all(isinstance(p, BaseModel) for p in payload):
        text = "[" + ",".join(p.model_dump_json(by_alias=True) for p in payload) + "]"
    else:
        text = json.dumps(payload)
    return web.json_response(text=text, status=status, headers=headers)
