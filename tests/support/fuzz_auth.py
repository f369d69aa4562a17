"""Schemathesis hooks for fuzzing through the ingress (tests/mesh/test_edge_fuzz.py).

Loaded by `schemathesis run` through SCHEMATHESIS_HOOKS; the ingress URL comes in
MESHMART_FUZZ_INGRESS. A customer signs up and logs in once; every case carries a valid token,
so the protected operations are exercised past the edge rather than refused at it. Half of the
generated `userId`s become the customer's own (chosen from the drawn value, so a case replays
the same way), which passes the services' owner check; the rest get the documented 403. A
stateful walk's login (signup -> login -> own user) brings its own token: the user it logged
in calls with that token, so the link's next step is the owner too.
"""

from __future__ import annotations

import json
import os
import uuid
import zlib
from typing import Any

import requests
import schemathesis
from pydantic import ValidationError
from schemathesis import Case, Response
from schemathesis.auths import AuthContext
from schemathesis.hooks import HookContext

from services.order.models import OrderRequest

OWNER = "userId"
PRICED = {"productId": "CATALOG-001", "unitPrice": 1500}  # a seed product at its price
_tokens: dict[str, str] = {}  # userId -> a token of that user (the customer's, walks' logins)
_customer: dict[str, str] = {}


def customer() -> dict[str, str]:
    """The customer's userId and token, signed up and logged in on first use."""
    if not _customer:
        ingress = os.environ["MESHMART_FUZZ_INGRESS"]
        email = f"fuzz-{uuid.uuid4().hex[:10]}@example.com"
        signup = {"email": email, "name": "Fuzz Customer", "pwd": "password-1"}
        created = requests.post(f"{ingress}/user-service/users", json=signup, timeout=30)
        created.raise_for_status()
        login = {"email": email, "password": "password-1"}
        logged_in = requests.post(f"{ingress}/user-service/login", json=login, timeout=30)
        logged_in.raise_for_status()
        body = logged_in.json()
        _customer.update(userId=body["userId"], token=body["token"])
        _tokens[body["userId"]] = body["token"]
    return _customer


@schemathesis.auth()
class CustomerToken:
    def get(self, case: Case, ctx: AuthContext) -> str:
        return customer()["token"]

    def set(self, case: Case, data: str, ctx: AuthContext) -> None:
        owner = (case.path_parameters or {}).get(OWNER)
        token = _tokens.get(owner, data) if isinstance(owner, str) else data
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}


@schemathesis.hook
def map_path_parameters(
    ctx: HookContext, path_parameters: dict[str, Any] | None
) -> dict[str, Any] | None:
    drawn = (path_parameters or {}).get(OWNER)
    if isinstance(drawn, str) and zlib.crc32(drawn.encode("utf-8", "replace")) % 2 == 0:
        return {**(path_parameters or {}), OWNER: customer()["userId"]}
    return path_parameters


@schemathesis.hook("map_body")
def priced_order(ctx: HookContext, body: Any) -> Any:
    """Half of the schema-valid orders name a real product at its price, so some are placed
    (201) and the link to the orders is walked; the rest stay unknown products (422)."""
    operation = ctx.operation
    target = operation is not None and (operation.method.upper(), operation.path) == (
        "POST",
        "/{userId}/orders",
    )
    # Only bodies the service's own model accepts: a negative case must stay negative.
    valid = target and _valid_order(body)
    if valid and zlib.crc32(body["productId"].encode("utf-8", "replace")) % 2 == 0:
        return {**body, **PRICED}
    return body


def _valid_order(body: Any) -> bool:
    try:
        OrderRequest.model_validate_json(json.dumps(body), strict=True)
    except (ValidationError, TypeError, ValueError):
        return False
    return True


@schemathesis.hook
def after_call(ctx: HookContext, case: Case, response: Response) -> None:
    """Remember the token of every user a walk logs in, for the link's next step."""
    if case.operation.path == "/login" and response.status_code == 200:
        body = response.json()
        _tokens[body["userId"]] = body["token"]
