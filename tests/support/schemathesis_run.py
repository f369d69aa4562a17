"""One schemathesis run as the fuzz tests make it (tests/e2e/test_api_fuzz.py against the apps,
tests/mesh/test_edge_fuzz.py through the ingress): every check, a fixed seed, no example
database, so a failure replays."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"

EXCLUDED_CHECKS = [
    # Schema-valid orders for unknown products are rightly refused (422): a business rule no
    # schema can express, so "valid data must be accepted" does not apply.
    "positive_data_acceptance",
]


def run_schemathesis(
    schema: str,
    *,
    phases: Sequence[str],
    examples: int,
    seed: int,
    cwd: Path,
    timeout: float,
    options: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`schemathesis run` on `schema` (a URL or a file), run in `cwd`: schemathesis keeps a
    cache in its working directory."""
    command = [
        str(SCHEMATHESIS), "run", schema, *options,
        "--checks", "all",
        "--exclude-checks", ",".join(EXCLUDED_CHECKS),
        "--phases", ",".join(phases),
        "--max-examples", str(examples),
        "--seed", str(seed),
        "--generation-database", "none",
        "--no-color",
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env=None if env is None else dict(env))  # fmt: skip
