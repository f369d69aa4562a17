from __future__ import annotations

from pathlib import Path

from aiohttp import web

from services.catalog.handlers import OPERATIONS
from services.catalog.settings import CatalogSettings
from services.common.app import base_app

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: CatalogSettings) -> web.Application:
    return base_app(settings, OPERATIONS, MIGRATIONS)
