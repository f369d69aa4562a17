"""Each service's database on a PostgreSQL server: created if missing, migrations applied."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from mesh.control.workloads import SERVICES
from mesh.infra.postgres import database_dsn, ensure_databases, mask_dsn
from services.common.migrations import apply_migrations


def prepare_databases(admin_dsn: str, progress: Callable[[str], None] = print) -> None:
    """Create each service's database if missing and apply its migrations, saying what it did."""
    asyncio.run(_prepare(admin_dsn, progress))


async def _prepare(admin_dsn: str, progress: Callable[[str], None]) -> None:
    created = set(await ensure_databases(admin_dsn, (s.database for s in SERVICES)))
    for spec in SERVICES:
        dsn = database_dsn(admin_dsn, spec.database)
        applied = await apply_migrations(dsn, spec.migrations)
        state = "created" if spec.database in created else "exists"
        migrations = f"applied {', '.join(applied)}" if applied else "up to date"
        progress(f"{spec.name}: database {spec.database} {state}, migrations {migrations}")
        progress(f"  {mask_dsn(dsn)}")
