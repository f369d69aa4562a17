from __future__ import annotations

from pathlib import Path

from aiohttp import web

from services.catalog.handlers import OPERATIONS
from services.catalog.settings import CatalogSettings
from services.catalog.stock import order_events_handler
from services.common.app import base_app
from services.common.events import ORDER_EVENT, ORDER_EVENTS
from services.common.messaging import messaging_context
from services.common.migrations import MESSAGING

MIGRATIONS = (MESSAGING, ("catalog", Path(__file__).parent / "migrations"))


def create_app(settings: CatalogSettings) -> web.Application:
    app = base_app(settings, OPERATIONS, MIGRATIONS)
    app.cleanup_ctx.append(
        messaging_context(
            settings, topic=ORDER_EVENTS, events=ORDER_EVENT, handler=order_events_handler
        )
    )
    return app
