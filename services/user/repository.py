from __future__ import annotations

import uuid

import asyncpg

from services.user.models import User


class DuplicateEmail(Exception):
    pass


async def create_user(pool: asyncpg.Pool, email: str, name: str, password_hash: str) -> User:
    user_id = uuid.uuid4()
    try:
        await pool.execute(
            "INSERT INTO users (user_id, email, name, password_hash) VALUES ($1, $2, $3, $4)",
            user_id,
            email,
            name,
            password_hash,
        )
    except asyncpg.UniqueViolationError as exc:
        raise DuplicateEmail(email) from exc
    return User(email=email, name=name, user_id=str(user_id))


async def list_users(pool: asyncpg.Pool) -> list[User]:
    rows = await pool.fetch("SELECT email, name, user_id::text FROM users ORDER BY created_at")
    return [User(**dict(row)) for row in rows]


async def get_user(pool: asyncpg.Pool, user_id: str) -> User | None:
    try:
        parsed = uuid.UUID(user_id)
    except ValueError:
        return None  # not an id we could have issued: simply unknown
    row = await pool.fetchrow(
        "SELECT email, name, user_id::text FROM users WHERE user_id = $1", parsed
    )
    return User(**dict(row)) if row else None


async def credentials(pool: asyncpg.Pool, email: str) -> tuple[str, str] | None:
    """(user id, password hash) for an email, compared case-insensitively."""
    row = await pool.fetchrow(
        "SELECT user_id::text, password_hash FROM users WHERE lower(email) = lower($1)", email
    )
    return (row["user_id"], row["password_hash"]) if row else None
