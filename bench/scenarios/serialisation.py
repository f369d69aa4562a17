"""orjson vs json vs pydantic for the `GET /catalogs` body (the three seed rows), in process:
microseconds per response body, so the choice of serialiser is measured, not assumed."""

from __future__ import annotations

import json
import timeit
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import TypeAdapter

from services.catalog.models import CatalogItem
from services.common.errors import json_response

ROUNDS = 20_000


def _items() -> list[CatalogItem]:
    now = datetime.now(UTC)
    return [
        CatalogItem(
            product_id=f"CATALOG-00{n}",
            product_name=name,
            unit_price=price,
            stock=100,
            created_at=now,
        )
        for n, (name, price) in enumerate(
            (("Berlin", 1500), ("Tokyo", 1000), ("Stockholm", 2000)), start=1
        )
    ]


def run(rounds: int = ROUNDS) -> dict[str, Any]:
    items = _items()
    adapter = TypeAdapter(list[CatalogItem])
    dicts = [item.model_dump(mode="json", by_alias=True) for item in items]
    ways = {
        "pydantic model_dump_json per item (the services' json_response)": lambda: json_response(
            items
        ),
        "pydantic TypeAdapter(list).dump_json": lambda: adapter.dump_json(items, by_alias=True),
        "orjson.dumps of model_dump dicts": lambda: orjson.dumps(
            [item.model_dump(mode="json", by_alias=True) for item in items]
        ),
        "json.dumps of ready dicts (no model)": lambda: json.dumps(dicts),
        "orjson.dumps of ready dicts (no model)": lambda: orjson.dumps(dicts),
    }
    print("  serialisation: GET /catalogs body", flush=True)
    return {
        name: round(min(timeit.repeat(way, number=rounds, repeat=3)) / rounds * 1e6, 2)
        for name, way in ways.items()
    }
