from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError
from yarl import URL

from services.common.app import HTTP_CLIENT
from services.common.db import DB_POOL
from services.common.errors import ProblemError, json_response
from services.common.messaging import kick_relay
from services.common.operations import Link, Operation
from services.common.peers import PeerUnavailable, get_json
from services.common.principal import Access
from services.common.propagation import forwarded_headers
from services.common.requests import path_text, read_body
from services.order import idempotency, repository, service
from services.order.models import CatalogProduct, Order, OrderRequest
from services.order.settings import ORDER_SETTINGS

MAX_USER_ID_LENGTH = 100


def _user_id(request: web.Request) -> str:
    return path_text(request, "userId", MAX_USER_ID_LENGTH)


def _catalog_for(request: web.Request) -> service.CatalogLookup:
    """catalog-service as the flow's lookup, carrying this request's trace headers."""
    settings = request.app[ORDER_SETTINGS]

    async def lookup(product_id: str) -> CatalogProduct | None:
        try:
            payload = await get_json(
                request.app[HTTP_CLIENT],
                URL(settings.catalog_service_url) / "catalogs" / product_id,
                headers=forwarded_headers(request.headers),
                timeout_seconds=settings.catalog_timeout_seconds,
                allow_not_found=True,
            )
            return None if payload is None else CatalogProduct.model_validate(payload)
        except (PeerUnavailable, ValidationError) as exc:
            raise service.CatalogUnavailable(str(exc)) from exc

    return lookup


async def place_order(request: web.Request) -> web.Response:
    user_id = _user_id(request)
    body = await read_body(request, OrderRequest)
    key = idempotency.key_from_header(request.headers.get(idempotency.HEADER))
    try:
        placed = await service.place_order(
            repository.PostgresOrderRepository(request.app[DB_POOL]),
            _catalog_for(request),
            user_id=user_id,
            request=body,
            idempotency_key=key,
            service_version=request.app[ORDER_SETTINGS].service_version,
        )
    except service.CatalogUnavailable as exc:
        raise ProblemError(503, "catalog-service is unavailable; the order was not placed") from exc
    if placed.replayed:
        return web.json_response(
            text=placed.body, status=placed.status, headers={"Idempotent-Replayed": "true"}
        )
    # The kick stays here, not in the flow: it only hurries the outbox relay (which would
    # publish at its next poll anyway), so it is the app's plumbing, not an order rule.
    # Only a fresh placement committed an outbox row worth hurrying.
    kick_relay(request.app)
    return web.json_response(text=placed.body, status=placed.status)


async def list_orders(request: web.Request) -> web.Response:
    return json_response(await repository.list_orders(request.app[DB_POOL], _user_id(request)))


OPERATIONS = (
    Operation(
        "POST",
        "/{userId}/orders",
        place_order,
        "Place an order (status PENDING) for the caller",
        request=OrderRequest,
        response=Order,
        status=201,
        errors=(400, 422, 503),
        access=Access.OWNER,
        headers={
            idempotency.HEADER: "Retries with the same key and body return the first response"
        },
        database=True,
        links=(
            Link(
                "ListOrders",
                "list_orders",
                "The caller's orders, the one just placed among them",
                parameters={"userId": "$response.body#/userId"},
            ),
        ),
    ),
    Operation(
        "GET",
        "/{userId}/orders",
        list_orders,
        "The caller's orders, newest first",
        response=list[Order],
        errors=(400,),
        access=Access.OWNER,
        database=True,
    ),
)
