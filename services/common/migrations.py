"""Numbered SQL migrations (NNN_name.sql), applied once each, in order, under an advisory lock."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

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


async def apply_migrations(dsn: str, directory: Path) -> list[str]:
    """Apply pending migrations from `directory`; returns the file names applied (empty: no-op)."""
    migrations = discover(directory)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _ADVISORY_LOCK_KEY)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            applied: list[str] = []
            for version, path in migrations:
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text(encoding="utf-8"))
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        version,
                        path.name,
                    )
                log.info("migration applied", extra={"migration": path.name})
                applied.append(path.name)
            return applied
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _ADVISORY_LOCK_KEY)
    finally:
        await conn.close()
