from __future__ import annotations

from pathlib import Path

from aiohttp import web

from services.common.app import base_app, http_client_context
from services.order.handlers import OPERATIONS
from services.order.settings import ORDER_SETTINGS, OrderSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: OrderSettings) -> web.Application:
    app = base_app(settings, OPERATIONS, MIGRATIONS)
    app[ORDER_SETTINGS] = settings
    app.cleanup_ctx.append(http_client_context)
    return app
