"""Numbered SQL migrations, applied once each, in order, under an advisory lock.

A service's schema is a sequence of modules, each a directory of `NNN_name.sql` files with
its own numbering: shared tables (the outbox) live in `services/common/migrations/<module>`
once, instead of a copy per service.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

MigrationModule = tuple[str, Path]  # (module name, directory)
COMMON_MIGRATIONS = Path(__file__).parent / "migrations"
MESSAGING: MigrationModule = ("messaging", COMMON_MIGRATIONS / "messaging")

_FILENAME = re.compile(r"^(\d{3,})_[a-z0-9_]+\.sql$")
# Any constant works: it only has to be the same for every process migrating this database,
# so two replicas starting together cannot apply the same file twice.
_ADVISORY_LOCK_KEY = 0x6D657368


def discover(directory: Path) -> list[tuple[int, Path]]:
    """The migration files in order; a misnamed or duplicate-numbered file is an error."""
    found: dict[int, Path] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILENAME.match(path.name)
        if match is None:
            raise ValueError(f"{path}: migration files must be named NNN_snake_case.sql")
        version = int(match.group(1))
        if version in found:
            raise ValueError(f"{path}: version {version} also used by {found[version].name}")
        found[version] = path
    return sorted(found.items())


async def apply_migrations(dsn: str, modules: Sequence[MigrationModule]) -> list[str]:
    """Apply pending migrations, module by module; returns `module/file` names applied."""
    plan = [(module, discover(directory)) for module, directory in modules]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _ADVISORY_LOCK_KEY)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " module text NOT NULL, version integer NOT NULL, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (module, version))"
            )
            done = {
                (r["module"], r["version"])
                for r in await conn.fetch("SELECT module, version FROM schema_migrations")
            }
            applied: list[str] = []
            for module, migrations in plan:
                for version, path in migrations:
                    if (module, version) in done:
                        continue
                    async with conn.transaction():
                        await conn.execute(path.read_text(encoding="utf-8"))
                        await conn.execute(
                            "INSERT INTO schema_migrations (module, version, name)"
                            " VALUES ($1, $2, $3)",
                            module,
                            version,
                            path.name,
                        )
                    log.info("migration applied", extra={"migration": f"{module}/{path.name}"})
                    applied.append(f"{module}/{path.name}")
            return applied
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _ADVISORY_LOCK_KEY)
    finally:
        await conn.close()
