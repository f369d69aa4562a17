"""Fixtures that start `meshmart run` (see shop.py)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.shop import free_base_port, start_shop


@pytest.fixture
def meshmart_run(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    base = free_base_port()
    for proc in start_shop(tmp_path / "run", "--direct", "--base-port", str(base)):
        yield proc, base, tmp_path / "run"


@pytest.fixture(scope="module")
def shared_shop(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    run_dir, base = tmp_path_factory.mktemp("shop") / "run", free_base_port()
    for proc in start_shop(run_dir, "--direct", "--base-port", str(base)):
        yield proc, base, run_dir
