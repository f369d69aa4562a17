"""The three services on the real PostgreSQL started for the session, wired to each other.

Each app gets its own database, as in production. Tests use unique ids (emails, user ids)
instead of cleaning up between tests.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mesh.infra.postgres import PostgresServer, database_dsn, ensure_databases
from services.catalog.app import create_app as create_catalog
from services.catalog.settings import CatalogSettings
from services.common.telemetry import configure_tracing
from services.order.app import create_app as create_order
from services.order.settings import OrderSettings
from services.user.app import create_app as create_user
from services.user.settings import UserSettings
from services.user.tokens import generate_private_key_pem

Client = TestClient[web.Request, web.Application]
DATABASES = ("itest_user", "itest_catalog", "itest_order")


@pytest.fixture(scope="session", autouse=True)
def spans() -> InMemorySpanExporter:
    """Tracing set up exactly as a service process does, with spans kept in memory.

    Autouse and session-wide: the tracer provider is process-global and the aiohttp server
    instrumentation must be in place before any app is built.
    """
    exporter = InMemorySpanExporter()
    configure_tracing("meshmart-tests", "test", None, [SimpleSpanProcessor(exporter)])
    return exporter


@pytest.fixture(scope="session")
async def databases(postgres_server: PostgresServer) -> dict[str, str]:
    await ensure_databases(postgres_server.admin_dsn, DATABASES)
    return {name: database_dsn(postgres_server.admin_dsn, name) for name in DATABASES}


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secrets") / "jwt.pem"
    path.write_bytes(generate_private_key_pem())
    return path


@pytest.fixture(scope="session")
def live_config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "user-service.yaml"
    path.write_text("greeting: Hello from the first config\n")
    return path


async def _serve(app: web.Application) -> AsyncIterator[Client]:
    async with TestClient(TestServer(app)) as client:
        yield client


@pytest.fixture(scope="session")
async def catalog(databases: dict[str, str]) -> AsyncIterator[Client]:
    settings = CatalogSettings(environment="test", database_url=databases["itest_catalog"])
    async for client in _serve(create_catalog(settings)):
        yield client


@pytest.fixture(scope="session")
def order_settings(databases: dict[str, str], catalog: Client) -> OrderSettings:
    return OrderSettings(
        environment="test",
        database_url=databases["itest_order"],
        catalog_service_url=str(catalog.make_url("")),
    )


@pytest.fixture(scope="session")
async def order(order_settings: OrderSettings) -> AsyncIterator[Client]:
    async for client in _serve(create_order(order_settings)):
        yield client


@pytest.fixture(scope="session")
def make_user_settings(
    databases: dict[str, str], signing_key: Path, live_config_file: Path, order: Client
) -> Callable[..., UserSettings]:
    def make(**overrides: Any) -> UserSettings:
        values: dict[str, Any] = {
            "environment": "test",
            "database_url": databases["itest_user"],
            "jwt_signing_key_file": signing_key,
            "live_config_file": live_config_file,
            "order_service_url": str(order.make_url("")),
            **overrides,
        }
        return UserSettings(**values)

    return make


@pytest.fixture(scope="session")
async def user(make_user_settings: Callable[..., UserSettings]) -> AsyncIterator[Client]:
    async for client in _serve(create_user(make_user_settings())):
        yield client


def unique_email() -> str:
    return f"u-{uuid.uuid4().hex[:12]}@example.com"


async def signup(
    user: Client, email: str | None = None, pwd: str = "correct-horse"
) -> dict[str, Any]:
    resp = await user.post(
        "/users", json={"email": email or unique_email(), "name": "Ada", "pwd": pwd}
    )
    assert resp.status == 201, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body
