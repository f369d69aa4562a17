"""The committed documents list what the edge answers, next to each service's own answers, and
the links a client follows from one operation to the next."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mesh.commands.openapi import TABLES, committed_path
from mesh.console import openapi as console_openapi

PROBLEM = "application/problem+json"
TEXT = "text/plain"
DATABASE_BACKED = {
    ("post", "/users"),
    ("post", "/login"),
    ("get", "/users"),
    ("get", "/users/{userId}"),
    ("get", "/catalogs"),
    ("get", "/catalogs/{productId}"),
    ("post", "/{userId}/orders"),
    ("get", "/{userId}/orders"),
}


def document(package: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(committed_path(package).read_text(encoding="utf-8"))
    return loaded


def operations() -> list[tuple[str, str, str, dict[str, Any]]]:
    return [
        (package, method, path, entry)
        for package in sorted(TABLES)
        for path, methods in document(package)["paths"].items()
        for method, entry in methods.items()
    ]


def media(entry: dict[str, Any], status: int) -> set[str]:
    return set(entry["responses"].get(str(status), {}).get("content", {}))


@pytest.mark.parametrize(("package", "method", "path", "entry"), operations())
def test_every_operation_lists_the_edges_own_answers(
    package: str, method: str, path: str, entry: dict[str, Any]
) -> None:
    assert TEXT in media(entry, 401)  # jwt_authn: a token it cannot verify
    assert TEXT in media(entry, 503)  # Envoy: upstream connect error / no healthy upstream
    assert TEXT in media(entry, 504)  # Envoy: upstream request timeout
    protected = "security" in entry
    if protected or "{" in path:
        assert TEXT in media(entry, 403)
        assert entry["responses"]["403"]["content"][TEXT]["example"] == "RBAC: access denied"
    if "{" in path:
        assert media(entry, 404) == {PROBLEM}  # and Envoy's empty 404 (no media type)
        assert "empty body" in entry["responses"]["404"]["description"]
        assert PROBLEM in media(entry, 400)
    assert (PROBLEM in media(entry, 503)) == ((method, path) in DATABASE_BACKED)


def test_the_owners_own_403_stays_next_to_rbacs() -> None:
    detail = document("user")["paths"]["/users/{userId}"]["get"]
    assert media(detail, 403) == {PROBLEM, TEXT}
    assert media(detail, 401) == {PROBLEM, TEXT}


def test_signup_links_to_login_and_login_to_the_own_user() -> None:
    paths = document("user")["paths"]
    signup = paths["/users"]["post"]["responses"]["201"]["links"]
    assert signup["LogIn"]["operationId"] == "login"
    assert signup["LogIn"]["requestBody"] == {
        "email": "$request.body#/email",
        "password": "$request.body#/pwd",
    }
    login = paths["/login"]["post"]["responses"]["200"]["links"]
    assert login["GetOwnUser"] == {
        "operationId": "get_user",
        "description": login["GetOwnUser"]["description"],
        "parameters": {"userId": "$response.body#/userId"},
    }


def test_a_placed_order_links_to_the_orders() -> None:
    placed = document("order")["paths"]["/{userId}/orders"]["post"]["responses"]["201"]
    assert placed["links"]["ListOrders"]["operationId"] == "list_orders"
    assert placed["links"]["ListOrders"]["parameters"] == {"userId": "$response.body#/userId"}


def test_every_link_names_an_operation_of_its_document() -> None:
    for package in sorted(TABLES):
        paths = document(package)["paths"]
        ids = {entry["operationId"] for methods in paths.values() for entry in methods.values()}
        for methods in paths.values():
            for entry in methods.values():
                for response in entry["responses"].values():
                    for link in response.get("links", {}).values():
                        assert link["operationId"] in ids, (package, link)


def test_the_console_is_not_behind_the_edge() -> None:
    console = json.loads(console_openapi.COMMITTED.read_text(encoding="utf-8"))
    for methods in console["paths"].values():
        for entry in methods.values():
            for response in entry["responses"].values():
                assert TEXT not in response.get("content", {})
