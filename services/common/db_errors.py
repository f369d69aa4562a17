"""Which exceptions mean "the database is unreachable right now", for every caller that must
tell a lost connection from a bug: the HTTP error middleware (503 + Retry-After instead of a
500) and the Kafka consumer (pause and retry the batch instead of dead-lettering it)."""

from __future__ import annotations

import asyncpg

# A PostgreSQL restart (or failover) under load surfaces in handlers and consumers as these:
# refused or reset sockets when the pool opens a connection, the server's own "shutting down" /
# "starting up" errors (57P01, 57P03, ...), and asyncpg's errors for a connection that closed
# under a query (ConnectionDoesNotExistError, "connection is closed", "pool is closing", a
# session cut mid-protocol). None of them is the request's or the event's fault, and a retry a
# moment later succeeds (the chaos run found each of them, docs/reliability.md).
DATABASE_UNAVAILABLE: tuple[type[BaseException], ...] = (
    ConnectionError,  # ConnectionRefusedError, ConnectionResetError, BrokenPipeError, ...
    asyncpg.PostgresConnectionError,  # 08xxx, including ConnectionDoesNotExistError
    asyncpg.exceptions.OperatorInterventionError,  # AdminShutdown, CannotConnectNow, ...
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)
# InterfaceError's subclasses that are the code's mistakes, not a lost connection (a wrong
# argument type, a bad pool setting): they stay errors (a 500, a dead letter) so they are
# found and fixed instead of retried for ever.
CODE_MISTAKES: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.DataError,
    asyncpg.exceptions.ClientConfigurationError,
    asyncpg.exceptions.UnsupportedClientFeatureError,
    asyncpg.exceptions.UnsupportedServerFeatureError,
)


def database_unavailable(exc: BaseException) -> bool:
    """A lost or refused connection, or a server shutting down or starting up."""
    return isinstance(exc, DATABASE_UNAVAILABLE) and not isinstance(exc, CODE_MISTAKES)
