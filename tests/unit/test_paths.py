"""One spelling per resource: every ambiguous spelling of a path is refused before routing."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from yarl import URL

from services.common.errors import problem_middleware
from services.common.paths import ambiguity, canonical_path_middleware
from services.order.models import PRODUCT_ID_PATTERN, OrderRequest


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/users",
        "/users/3f1c6f1e-0000-4000-8000-00000000a11c",
        "/catalogs/CATALOG-001",
        "/.well-known/jwks.json",  # a dot inside a segment is not a dot segment
        "/u-1/orders",
        "/catalogs/%27%3B%20DROP",  # escapes of characters that need escaping stay allowed
        "/catalogs/%C3%A9",
    ],
)
def test_canonical_paths_pass(path: str) -> None:
    assert ambiguity(path) is None


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/%75sers", "percent-encoded 'u'"),
        ("/users/%41", "percent-encoded 'A'"),
        ("/%2e%2e/users", "percent-encoded '.'"),
        ("/users%2F1", "percent-encoded '/'"),
        ("/users%5C1", "percent-encoded '\\\\'"),
        ("/%2575sers", "percent-encoded '%'"),
        ("/users%00", "percent-encoded '\\x00'"),
        ("/users/%7e", "percent-encoded '~'"),
        ("/users%", "malformed percent-escape"),
        ("/users%zz", "malformed percent-escape"),
        ("/users/./1", "dot segment"),
        ("/x/../users", "dot segment"),
        ("/users/..", "dot segment"),
        ("//users", "empty path segment"),
        ("/users/", "empty path segment"),
        ("/users\\1", "backslash"),
        ("/users;jsessionid=1", "path parameters"),
    ],
)
def test_ambiguous_paths_are_named(path: str, reason: str) -> None:
    found = ambiguity(path)
    assert found is not None and reason in found


async def test_the_middleware_answers_400_before_any_handler() -> None:
    reached: list[str] = []

    async def users(request: web.Request) -> web.Response:
        reached.append(request.path)
        return web.json_response([])

    app = web.Application(middlewares=[problem_middleware, canonical_path_middleware])
    app.router.add_get("/users", users)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get(URL("/%75sers", encoded=True))  # sent as written
        assert resp.status == 400 and resp.content_type == "application/problem+json"
        assert "percent-encoded 'u'" in (await resp.json())["detail"]
        assert (await client.get("/users?q=%75")).status == 200  # the query is not the path
    assert reached == ["/users"]


@settings(max_examples=300, deadline=None)
@given(st.from_regex(PRODUCT_ID_PATTERN, fullmatch=True).filter(lambda s: len(s) <= 64))
def test_every_product_id_an_order_accepts_is_a_canonical_catalog_path(product_id: str) -> None:
    # order-service looks the product up at catalog-service's /catalogs/{productId}: an id it
    # accepted but the catalog refused as non-canonical was a 503 (found by schemathesis)
    OrderRequest.model_validate({"productId": product_id, "qty": 1, "unitPrice": 1})
    assert ambiguity((URL("http://catalog") / "catalogs" / product_id).raw_path) is None


@pytest.mark.parametrize("product_id", ["|\u00dd\u0018\u0004\r\u00b2", "..", ".", "a/b", "a%2F"])
def test_product_ids_the_catalog_could_not_name_are_refused_with_the_field(
    product_id: str,
) -> None:
    with pytest.raises(ValidationError) as refused:
        OrderRequest.model_validate({"productId": product_id, "qty": 1, "unitPrice": 1})
    assert refused.value.errors()[0]["loc"] == ("productId",)
