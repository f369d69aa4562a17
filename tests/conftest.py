"""Shared fixtures: one real PostgreSQL server, Kafka broker and Zipkin server for the session."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from mesh.infra.kafka import KafkaBroker, start_kafka, stop_kafka
from mesh.infra.postgres import PostgresServer, start_postgres, stop_postgres
from mesh.infra.zipkin import ZipkinServer, start_zipkin, stop_zipkin

_S = TypeVar("_S")


def _served(
    run_dir: Path, start: Callable[[Path], _S], stop: Callable[[Path], bool]
) -> Iterator[_S]:
    """A server of `run_dir` for the session, stopped at its end."""
    server = start(run_dir)  # each launcher cleans up after itself if the start fails
    try:
        yield server
    finally:
        stop(run_dir)


@pytest.fixture(scope="session")
def postgres_base_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where test PostgreSQL clusters live; traversable by the server user.

    As root the server runs as meshmart-pg, which must be able to enter every parent directory.
    pytest's /tmp/pytest-of-root is 0700 and every pytest session (e.g. a concurrent one)
    resets it to 0700, which would cut a running server's pg_ctl off mid-session; so as root
    use a directory of our own directly under /tmp instead.
    """
    if os.geteuid() != 0:
        yield tmp_path_factory.mktemp("postgres")
        return
    base = Path(tempfile.mkdtemp(prefix="meshmart-pg-tests-"))
    base.chmod(0o711)  # enter, not list
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_tmp_path(postgres_base_dir: Path, request: pytest.FixtureRequest) -> Path:
    """A fresh per-test directory for a test that starts its own server."""
    path = postgres_base_dir / str(request.node.name)
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def postgres_server(postgres_base_dir: Path) -> Iterator[PostgresServer]:
    """A fresh server on 127.0.0.1 (fsync off), stopped at the end of the session."""
    data_dir = postgres_base_dir / "session" / "data"
    yield from _served(data_dir, lambda d: start_postgres(d, fast_unsafe=True), stop_postgres)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A single-node Kafka broker (KRaft) on 127.0.0.1 in its own run dir, stopped at the end.

    Started only if a test asks for it. The first run of all fetches the jars with Maven.
    """
    yield from _served(tmp_path_factory.mktemp("kafka") / "run", start_kafka, stop_kafka)


@pytest.fixture(scope="session")
def zipkin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZipkinServer]:
    """A Zipkin server (in-memory storage) on 127.0.0.1 in its own run dir, stopped at the end.

    Started only if a test asks for it. The first run of all fetches the jar with Maven.
    """
    yield from _served(tmp_path_factory.mktemp("zipkin") / "run", start_zipkin, stop_zipkin)
