from __future__ import annotations

from aiohttp import web

from services.catalog import repository
from services.catalog.models import CatalogItem
from services.common.db import DB_POOL
from services.common.errors import ProblemError, json_response
from services.common.operations import Link, Operation
from services.common.requests import path_text

MAX_PRODUCT_ID_LENGTH = 64


async def list_catalogs(request: web.Request) -> web.Response:
    return json_response(await repository.list_items(request.app[DB_POOL]))


async def get_catalog(request: web.Request) -> web.Response:
    product_id = path_text(request, "productId", MAX_PRODUCT_ID_LENGTH)
    item = await repository.get_item(request.app[DB_POOL], product_id)
    if item is None:
        raise ProblemError(404, f"no product {product_id!r}")
    return json_response(item)


OPERATIONS = (
    Operation(
        "GET",
        "/catalogs",
        list_catalogs,
        "List all products",
        response=list[CatalogItem],
        database=True,
        links=(
            Link(
                "GetProduct",
                "get_catalog",
                "The first product of the list",
                parameters={"productId": "$response.body#/0/productId"},
            ),
        ),
    ),
    Operation(
        "GET",
        "/catalogs/{productId}",
        get_catalog,
        "One product",
        response=CatalogItem,
        errors=(400, 404),
        database=True,
    ),
)
