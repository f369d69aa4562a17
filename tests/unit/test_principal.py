"""The owner check of each service: who the sidecar says is calling, against the path's userId."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from services.catalog.handlers import OPERATIONS as CATALOG
from services.common.errors import problem_middleware
from services.common.operations import Operation, add_routes
from services.common.principal import PAYLOAD_HEADER, Access, encode_payload, parse_payload
from services.order.handlers import OPERATIONS as ORDER
from services.user.handlers import OPERATIONS as USER
from tests.support.identity import ISSUER, as_user

Client = TestClient[web.Request, web.Application]
ALICE, BOB = "3f1c6f1e-0000-4000-8000-00000000a11c", "3f1c6f1e-0000-4000-8000-000000000b0b"


def test_payload_as_envoy_forwards_it() -> None:
    principal = parse_payload(encode_payload({"iss": ISSUER, "sub": ALICE, "exp": 1}))
    assert (principal.issuer, principal.subject) == (ISSUER, ALICE)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not base64 at all!",
        encode_payload({"iss": ISSUER}),  # no subject
        encode_payload({"iss": ISSUER, "sub": 42}),
        encode_payload({"iss": ISSUER, "sub": ""}),
        encode_payload({"sub": ALICE}),  # no issuer
        "WyJpc3MiLCJzdWIiXQ",  # a JSON array
        "x" * 9000,
        "eyJzdWIiOiJ1LTEi",  # truncated JSON
    ],
)
def test_unreadable_payloads_are_refused(value: str) -> None:
    with pytest.raises(ValueError):
        parse_payload(value)


async def _reached(request: web.Request) -> web.Response:
    return web.json_response({"reached": request.match_info.get("userId")})


@pytest.fixture
async def served() -> AsyncIterator[dict[str, Client]]:
    """Each service's real route table, with handlers that only say they were reached."""
    clients = {}
    for name, table in (("user", USER), ("order", ORDER), ("catalog", CATALOG)):
        app = web.Application(middlewares=[problem_middleware])
        fakes = tuple(dataclasses.replace(op, handler=_reached) for op in table)
        add_routes(app, fakes, ISSUER)
        clients[name] = TestClient(TestServer(app))
        await clients[name].start_server()
    yield clients
    for client in clients.values():
        await client.close()


def _concrete(op: Operation, user_id: str) -> str:
    return op.path.replace("{userId}", user_id).replace("{productId}", "CATALOG-001")


OWNED = [("user", op) for op in USER if op.access is Access.OWNER] + [
    ("order", op) for op in ORDER if op.access is Access.OWNER
]
FORGED = {
    "missing": ({}, 401),
    "another user": (as_user(BOB), 403),
    "another issuer": (as_user(ALICE, issuer="https://evil.example"), 401),
    "garbage": ({PAYLOAD_HEADER: "eyJub3QganNvbg"}, 401),
}


def test_the_owned_operations_are_the_ones_with_a_user_in_the_path() -> None:
    assert {(s, op.method, op.path) for s, op in OWNED} == {
        ("user", "GET", "/users/{userId}"),
        ("order", "GET", "/{userId}/orders"),
        ("order", "POST", "/{userId}/orders"),
    }
    assert all(op.access is Access.PUBLIC for op in CATALOG)


@pytest.mark.parametrize(("service", "op"), OWNED, ids=lambda v: getattr(v, "path", v))
@pytest.mark.parametrize("case", sorted(FORGED))
async def test_only_the_owner_reaches_the_handler(
    served: dict[str, Client], service: str, op: Operation, case: str
) -> None:
    headers, status = FORGED[case]
    resp = await served[service].request(op.method, _concrete(op, ALICE), headers=headers)
    assert resp.status == status
    assert resp.content_type == "application/problem+json"
    if status == 401:
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    owner = await served[service].request(op.method, _concrete(op, ALICE), headers=as_user(ALICE))
    assert owner.status == 200 and (await owner.json()) == {"reached": ALICE}


async def test_two_identity_headers_are_refused(served: dict[str, Client]) -> None:
    doubled = [(PAYLOAD_HEADER, as_user(ALICE)[PAYLOAD_HEADER])] * 2
    resp = await served["order"].get(f"/{ALICE}/orders", headers=doubled)
    assert resp.status == 401


async def test_listing_users_needs_some_user_and_public_operations_none(
    served: dict[str, Client],
) -> None:
    assert (await served["user"].get("/users")).status == 401
    assert (await served["user"].get("/users", headers=as_user(BOB))).status == 200
    for op in (*USER, *CATALOG):
        if op.access is Access.PUBLIC:
            service = "catalog" if op in CATALOG else "user"
            resp = await served[service].request(op.method, _concrete(op, ALICE))
            assert resp.status == 200, op.path
