"""The asyncpg pool of a service, opened (after migrations) and closed with the app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import asyncpg
from aiohttp import web

from services.common.health import READINESS_CHECKS
from services.common.migrations import MigrationModule, apply_migrations
from services.common.settings import ServiceSettings
from services.common.types import CleanupContext

DB_POOL = web.AppKey("db_pool", asyncpg.Pool)


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Nothing to undo when a connection goes back to the pool.

    asyncpg's default reset sends `RESET ALL; UNLISTEN *; ...` on every release: a database
    round trip per request. Pool connections here never take session state (no SET, LISTEN,
    advisory locks or cursors; migrations use their own connection), and asyncpg still rolls
    back a transaction left open before calling this.
    """


def database_context(
    settings: ServiceSettings, migrations: Sequence[MigrationModule]
) -> CleanupContext:
    async def context(app: web.Application) -> AsyncIterator[None]:
        dsn = settings.database_url.get_secret_value()
        await apply_migrations(dsn, migrations)
        pool = await asyncpg.create_pool(
            dsn,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
            reset=_keep_session,
        )
        app[DB_POOL] = pool

        async def database_answers() -> None:
            await pool.fetchval("SELECT 1")

        app[READINESS_CHECKS]["database"] = database_answers
        yield
        await pool.close()

    return context
