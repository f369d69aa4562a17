"""Scenario 4: the whole local mesh from `meshmart run` to all-ready (caches warm), and its
memory once up: RSS and PSS of every process by kind."""

from __future__ import annotations

from typing import Any

from bench.shop import Shop


def measure(shop: Shop) -> dict[str, Any]:
    """The shop was just started for this run: its start-up time and footprint."""
    return {"up_seconds": round(shop.up_seconds, 2), "memory": shop.memory()}
