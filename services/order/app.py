from __future__ import annotations

from pathlib import Path

from aiohttp import web

from services.common.app import base_app, http_client_context
from services.common.events import CATALOG_EVENT, CATALOG_EVENTS
from services.common.messaging import messaging_context
from services.common.migrations import MESSAGING
from services.order.handlers import OPERATIONS
from services.order.saga import catalog_events_handler
from services.order.settings import ORDER_SETTINGS, OrderSettings

MIGRATIONS = (MESSAGING, ("order", Path(__file__).parent / "migrations"))


def create_app(settings: OrderSettings) -> web.Application:
    app = base_app(settings, OPERATIONS, MIGRATIONS)
    app[ORDER_SETTINGS] = settings
    app.cleanup_ctx.append(http_client_context)
    app.cleanup_ctx.append(
        messaging_context(
            settings, topic=CATALOG_EVENTS, events=CATALOG_EVENT, handler=catalog_events_handler
        )
    )
    return app
