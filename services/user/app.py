from __future__ import annotations

from pathlib import Path

from aiohttp import web

from services.common.app import base_app, http_client_context
from services.common.live_config import LiveConfig, live_config_context
from services.user.handlers import OPERATIONS, TOKEN_ISSUER
from services.user.settings import USER_SETTINGS, UserSettings
from services.user.tokens import TokenIssuer

MIGRATIONS = (("user", Path(__file__).parent / "migrations"),)


def create_app(settings: UserSettings) -> web.Application:
    app = base_app(settings, OPERATIONS, MIGRATIONS)
    app[USER_SETTINGS] = settings
    app[TOKEN_ISSUER] = TokenIssuer(
        settings.signing_key_pem(), settings.jwt_issuer, settings.token_ttl_seconds
    )
    live = LiveConfig(settings.live_config_file, {"greeting": settings.greeting})
    app.cleanup_ctx.extend([http_client_context, live_config_context(live)])
    return app
