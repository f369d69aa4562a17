"""Schemathesis against each running service's own /openapi.json: no 5xx, and responses that
match the committed document (status codes, content types, schemas, rejected bad input)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.schemathesis_run import run_schemathesis


@pytest.mark.parametrize(("service", "offset"), [("user", 1), ("catalog", 2), ("order", 3)])
def test_generated_requests_never_break_the_service(
    shared_shop: tuple[subprocess.Popen[str], int, Path],
    service: str,
    offset: int,
    tmp_path: Path,
) -> None:
    _, base, _ = shared_shop
    result = run_schemathesis(
        f"http://127.0.0.1:{base + offset}/openapi.json",
        phases=["examples", "coverage", "fuzzing"],
        examples=40,
        seed=20261125,
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
