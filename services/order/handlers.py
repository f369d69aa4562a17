from __future__ import annotations

import uuid
from datetime import UTC, datetime

from aiohttp import web
from pydantic import ValidationError
from yarl import URL

from services.common.app import HTTP_CLIENT
from services.common.db import DB_POOL
from services.common.errors import ProblemError, json_response
from services.common.messaging import kick_relay
from services.common.operations import Operation
from services.common.peers import PeerUnavailable, get_json
from services.common.principal import Access
from services.common.propagation import forwarded_headers
from services.common.requests import path_text, read_body
from services.order import idempotency, pricing, repository
from services.order.idempotency import Decision
from services.order.models import CatalogProduct, Order, OrderRequest
from services.order.settings import ORDER_SETTINGS

MAX_USER_ID_LENGTH = 100


def _user_id(request: web.Request) -> str:
    return path_text(request, "userId", MAX_USER_ID_LENGTH)


async def _catalog_product(request: web.Request, product_id: str) -> CatalogProduct | None:
    settings = request.app[ORDER_SETTINGS]
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
        raise ProblemError(503, "catalog-service is unavailable; the order was not placed") from exc


async def place_order(request: web.Request) -> web.Response:
    user_id = _user_id(request)
    body = await read_body(request, OrderRequest)
    key = idempotency.key_from_header(request.headers.get(idempotency.HEADER))
    request_hash = idempotency.fingerprint(user_id, body)
    pool = request.app[DB_POOL]
    if key is not None:
        stored = await repository.find_stored_response(pool, user_id, key)
        decision = idempotency.decide(stored, request_hash)
        if decision is Decision.CONFLICT:
            raise idempotency.conflict()
        if decision is Decision.REPLAY and stored is not None:
            return _replay(stored)

    pricing.check_against_catalog(body, await _catalog_product(request, body.product_id))
    settings = request.app[ORDER_SETTINGS]
    order = Order(
        order_id=str(uuid.uuid4()),
        user_id=user_id,
        product_id=body.product_id,
        qty=body.qty,
        unit_price=body.unit_price,
        discount=pricing.discount(body.qty, body.unit_price, settings.service_version),
        total_price=pricing.total_price(body.qty, body.unit_price, settings.service_version),
        status="PENDING",
        created_at=datetime.now(UTC),
    )
    payload = order.model_dump_json(by_alias=True)
    earlier = await repository.save_order(
        pool, order, None if key is None else (key, request_hash), 201, payload
    )
    if earlier is not None:  # a concurrent retry with the same key won the race
        if idempotency.decide(earlier, request_hash) is Decision.CONFLICT:
            raise idempotency.conflict()
        return _replay(earlier)
    kick_relay(request.app)
    return web.json_response(text=payload, status=201)


def _replay(stored: idempotency.StoredResponse) -> web.Response:
    return web.json_response(
        text=stored.body, status=stored.status, headers={"Idempotent-Replayed": "true"}
    )


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
    ),
    Operation(
        "GET",
        "/{userId}/orders",
        list_orders,
        "The caller's orders, newest first",
        response=list[Order],
        errors=(400,),
        access=Access.OWNER,
    ),
)
