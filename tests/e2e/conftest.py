"""Fixtures that start `meshmart run` (see shop.py)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.shop import start_shop


@pytest.fixture
def meshmart_run(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    yield from start_shop(tmp_path / "run")


@pytest.fixture(scope="module")
def shared_shop(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    yield from start_shop(tmp_path_factory.mktemp("shop") / "run")
