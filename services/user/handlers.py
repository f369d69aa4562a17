from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from aiohttp import web
from yarl import URL

from services.common.app import HTTP_CLIENT
from services.common.db import DB_POOL
from services.common.errors import FieldError, ProblemError, json_response
from services.common.live_config import LIVE_CONFIG
from services.common.operations import Link, Operation
from services.common.peers import PeerUnavailable, get_json
from services.common.principal import Access
from services.common.propagation import forwarded_headers
from services.common.requests import read_body
from services.user import passwords, repository, service
from services.user.models import (
    Jwks,
    LoginRequest,
    LoginResponse,
    SignupRequest,
    User,
    UserDetail,
    Welcome,
)
from services.user.settings import USER_SETTINGS
from services.user.tokens import TokenIssuer

TOKEN_ISSUER = web.AppKey("token_issuer", TokenIssuer)


async def signup(request: web.Request) -> web.Response:
    body = await read_body(request, SignupRequest)
    password_hash = await asyncio.to_thread(passwords.hash_password, body.pwd)
    try:
        user = await repository.create_user(
            request.app[DB_POOL], body.email, body.name, password_hash
        )
    except repository.DuplicateEmail:
        raise ProblemError(
            409,
            "email already registered",
            errors=[FieldError(field="email", message="already registered")],
        ) from None
    return json_response(user, status=201)


async def login(request: web.Request) -> web.Response:
    body = await read_body(request, LoginRequest)
    found = await repository.credentials(request.app[DB_POOL], body.email)
    password_hash = found[1] if found else None
    if found is None or not await asyncio.to_thread(
        passwords.verify_password, password_hash, body.password
    ):
        # One message for both cases: a login form must not reveal which emails exist.
        raise ProblemError(401, "invalid email or password")
    token, expires = request.app[TOKEN_ISSUER].issue(found[0])
    response = LoginResponse(token=token, user_id=found[0], expires_at=expires)
    # The seed's clients read the token and id from response headers.
    return json_response(response, headers={"token": token, "userId": found[0]})


async def list_users(request: web.Request) -> web.Response:
    return json_response(await repository.list_users(request.app[DB_POOL]))


def _orders_for(request: web.Request) -> service.OrdersLookup:
    """order-service as the detail's orders lookup, carrying this request's trace headers."""
    settings = request.app[USER_SETTINGS]

    async def lookup(user_id: str) -> list[dict[str, Any]]:
        try:
            orders = await get_json(
                request.app[HTTP_CLIENT],
                URL(settings.order_service_url) / user_id / "orders",
                headers=forwarded_headers(request.headers),
                timeout_seconds=settings.orders_timeout_seconds,
            )
        except PeerUnavailable as exc:
            raise service.OrdersUnavailable(str(exc)) from exc
        if not isinstance(orders, list):
            raise service.OrdersUnavailable("order-service: not a list")
        return orders

    return lookup


async def get_user(request: web.Request) -> web.Response:
    detail = await service.user_detail(
        partial(repository.get_user, request.app[DB_POOL]),
        _orders_for(request),
        request.match_info["userId"],
    )
    if detail is None:
        raise ProblemError(404, "no such user")
    return json_response(detail)


async def jwks(request: web.Request) -> web.Response:
    return json_response(request.app[TOKEN_ISSUER].jwks())


async def welcome(request: web.Request) -> web.Response:
    message = request.app[LIVE_CONFIG].get("greeting")
    return json_response(Welcome(message=str(message)))


async def health_check(request: web.Request) -> web.Response:
    """The seed's endpoint, minus what it leaked: no secret, key or password in here."""
    settings = request.app[USER_SETTINGS]
    return web.json_response(
        {
            "status": "UP",
            "service": settings.service_name,
            "version": settings.service_version,
            "port": settings.port,
            "tokenIssuer": settings.jwt_issuer,
            "tokenExpirationSeconds": settings.token_ttl_seconds,
            "greeting": str(request.app[LIVE_CONFIG].get("greeting")),
        }
    )


OPERATIONS = (
    Operation(
        "POST",
        "/users",
        signup,
        "Sign up",
        request=SignupRequest,
        response=User,
        status=201,
        errors=(400, 409),
        database=True,
        links=(
            Link(
                "LogIn",
                "login",
                "Log in as the user just signed up",
                request_body={"email": "$request.body#/email", "password": "$request.body#/pwd"},
            ),
        ),
    ),
    Operation(
        "POST",
        "/login",
        login,
        "Log in; the token also comes in the `token` header",
        request=LoginRequest,
        response=LoginResponse,
        errors=(400, 401),
        database=True,
        links=(
            Link(
                "GetOwnUser",
                "get_user",
                "The logged-in user, with the token this login returned",
                parameters={"userId": "$response.body#/userId"},
            ),
        ),
    ),
    Operation(
        "GET",
        "/users",
        list_users,
        "List users",
        response=list[User],
        access=Access.USER,
        database=True,
    ),
    Operation(
        "GET",
        "/users/{userId}",
        get_user,
        "The caller's own user with their orders (degraded if unavailable)",
        response=UserDetail,
        errors=(404,),
        access=Access.OWNER,
        database=True,
    ),
    Operation("GET", "/.well-known/jwks.json", jwks, "Keys that verify tokens", response=Jwks),
    Operation("GET", "/welcome", welcome, "Greeting from live config", response=Welcome),
    Operation("GET", "/health_check", health_check, "The seed's status endpoint, without secrets"),
)
