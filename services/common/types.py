from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TypeAlias

import asyncpg
from aiohttp import web
from asyncpg.pool import PoolConnectionProxy

# What aiohttp's `app.cleanup_ctx` takes: set up before `yield`, tear down after.
CleanupContext = Callable[[web.Application], AsyncIterator[None]]

# A plain connection or one borrowed from a pool: both run queries in the caller's transaction.
DbConnection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
