"""Non-secret config read from a watched YAML file: the seed's Config Server + Bus refresh.

A Kubernetes ConfigMap volume is updated by swapping a `..data` symlink in the file's
directory, so the directory is watched (not the file) and the file re-read on any change.
A broken edit keeps the last good values and logs why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from watchfiles import awatch

from services.common.types import CleanupContext

log = logging.getLogger(__name__)


class LiveConfig:
    def __init__(self, path: Path | None, defaults: dict[str, Any]) -> None:
        self.path = path
        self.defaults = dict(defaults)
        self.values: dict[str, Any] = dict(defaults)
        if path is not None:
            self.reload()

    def get(self, key: str) -> Any:
        return self.values.get(key, self.defaults.get(key))

    def reload(self) -> bool:
        """Re-read the file; returns whether new values were taken."""
        assert self.path is not None
        try:
            loaded = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
            if not isinstance(loaded, dict):
                raise ValueError("top level must be a mapping")
        except (OSError, ValueError, yaml.YAMLError) as exc:
            log.warning(
                "live config not reloaded", extra={"file": str(self.path), "error": str(exc)}
            )
            return False
        self.values = {**self.defaults, **loaded}
        log.info("live config loaded", extra={"file": str(self.path), "keys": sorted(loaded)})
        return True

    async def watch(self, stop: asyncio.Event) -> None:
        assert self.path is not None
        async for _changes in awatch(self.path.parent, stop_event=stop, debounce=100, step=20):
            self.reload()


LIVE_CONFIG = web.AppKey("live_config", LiveConfig)


def live_config_context(config: LiveConfig) -> CleanupContext:
    async def context(app: web.Application) -> AsyncIterator[None]:
        app[LIVE_CONFIG] = config
        if config.path is None:
            yield
            return
        stop = asyncio.Event()
        watcher = asyncio.create_task(config.watch(stop))
        yield
        stop.set()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher

    return context
