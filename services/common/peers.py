"""Calls to peer services: one attempt, a deadline, a clear failure for the caller to degrade on.

No retries or breakers: the sidecar applies the mesh's policy to this very request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
from yarl import URL


class PeerUnavailable(Exception):
    """The peer did not give a usable answer in time (down, slow, 5xx, or nonsense)."""


async def get_json(
    session: aiohttp.ClientSession,
    url: URL,
    *,
    headers: Mapping[str, str],
    timeout_seconds: float,
    allow_not_found: bool = False,
) -> Any:
    """GET `url` and return its JSON; None on 404 when `allow_not_found`."""
    try:
        async with session.get(
            url, headers=dict(headers), timeout=aiohttp.ClientTimeout(total=timeout_seconds)
        ) as response:
            if response.status == 404 and allow_not_found:
                return None
            if response.status != 200:
                raise PeerUnavailable(f"{url.host}: HTTP {response.status}")
            return await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise PeerUnavailable(f"{url.host}: {type(exc).__name__}") from exc
