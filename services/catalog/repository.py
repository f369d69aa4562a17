from __future__ import annotations

import asyncpg

from services.catalog.models import CatalogItem

_COLUMNS = "product_id, product_name, unit_price, stock, created_at"


async def list_items(pool: asyncpg.Pool) -> list[CatalogItem]:
    rows = await pool.fetch(f"SELECT {_COLUMNS} FROM catalog ORDER BY product_id")  # noqa: S608
    return [CatalogItem(**dict(row)) for row in rows]


async def get_item(pool: asyncpg.Pool, product_id: str) -> CatalogItem | None:
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM catalog WHERE product_id = $1",  # noqa: S608
        product_id,
    )
    return CatalogItem(**dict(row)) if row else None
