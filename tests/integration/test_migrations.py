from __future__ import annotations

import asyncpg

from mesh.control.workloads import SERVICES
from mesh.infra.postgres import PostgresServer, database_dsn, ensure_databases
from services.common.migrations import apply_migrations


async def test_migrations_apply_once_then_are_a_no_op(postgres_server: PostgresServer) -> None:
    for spec in SERVICES:
        name = f"mtest_{spec.database}"
        await ensure_databases(postgres_server.admin_dsn, [name])
        dsn = database_dsn(postgres_server.admin_dsn, name)
        first = await apply_migrations(dsn, spec.migrations)
        assert first, spec.name
        assert await apply_migrations(dsn, spec.migrations) == []
        conn = await asyncpg.connect(dsn)
        try:
            versions = await conn.fetchval("SELECT count(*) FROM schema_migrations")
        finally:
            await conn.close()
        assert versions == len(first)


async def test_seed_rows_are_not_duplicated(postgres_server: PostgresServer) -> None:
    catalog = next(s for s in SERVICES if s.name == "catalog-service")
    await ensure_databases(postgres_server.admin_dsn, ["mtest_seed"])
    dsn = database_dsn(postgres_server.admin_dsn, "mtest_seed")
    await apply_migrations(dsn, catalog.migrations)
    await apply_migrations(dsn, catalog.migrations)
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM catalog") == 3
    finally:
        await conn.close()
