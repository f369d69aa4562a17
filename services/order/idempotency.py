"""Idempotency-Key decisions (eShop's RequestManager): a retried POST never orders twice."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum

from services.common.errors import FieldError, ProblemError
from services.order.models import OrderRequest

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class StoredResponse:
    request_hash: str
    status: int
    body: str


class Decision(Enum):
    PROCEED = "proceed"  # first time this key is seen: do the work
    REPLAY = "replay"  # same key, same request: answer as the first time
    CONFLICT = "conflict"  # same key, other request: refuse


def fingerprint(user_id: str, request: OrderRequest) -> str:
    canonical = f"{user_id}\n{request.model_dump_json(by_alias=True)}"
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def decide(stored: StoredResponse | None, request_hash: str) -> Decision:
    if stored is None:
        return Decision.PROCEED
    return Decision.REPLAY if stored.request_hash == request_hash else Decision.CONFLICT


def key_from_header(value: str | None) -> str | None:
    if value is None:
        return None
    if not 0 < len(value) <= MAX_KEY_LENGTH or not value.isprintable():
        raise ProblemError(
            400,
            "invalid Idempotency-Key",
            errors=[
                FieldError(
                    field=HEADER, message=f"must be 1..{MAX_KEY_LENGTH} printable characters"
                )
            ],
        )
    return value


def conflict() -> ProblemError:
    return ProblemError(
        422,
        "Idempotency-Key reused with a different request",
        errors=[FieldError(field=HEADER, message="already used for another request body")],
    )
