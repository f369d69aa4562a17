from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

# What aiohttp's `app.cleanup_ctx` takes: set up before `yield`, tear down after.
CleanupContext = Callable[[web.Application], AsyncIterator[None]]
