"""Schemathesis through the ingress: every service's committed OpenAPI document, fuzzed the way
clients reach it (JWT at the edge, path normalisation, RBAC, the sidecars), with a customer's
token (tests/support/fuzz_auth.py) and the documents' links for stateful walks.

Every response must conform to the document (status, content type, schema, headers), and no
5xx may appear except the mesh's documented ones (services/common/mesh_answers.py). The
tests/e2e fuzzing hits the apps directly; this one checks what clients of the edge really get.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mesh.commands.openapi import TABLES, committed_path
from mesh.paths import REPO_ROOT
from tests.mesh.conftest import Mesh

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
EXAMPLES = int(os.environ.get("MESHMART_FUZZ_EXAMPLES", "30"))

EXCLUDED_CHECKS = [
    # Schema-valid orders for unknown products are rightly refused (422): a business rule no
    # schema can express (as in tests/e2e/test_api_fuzz.py).
    "positive_data_acceptance",
]


@pytest.mark.parametrize("package", sorted(TABLES))
def test_generated_requests_through_the_edge_get_documented_answers(
    mesh: Mesh, package: str, tmp_path: Path
) -> None:
    service, _ = TABLES[package]
    result = subprocess.run(
        [
            str(SCHEMATHESIS), "run", str(committed_path(package)),
            "--url", f"{mesh.ingress}/{service}",
            "--checks", "all",
            "--exclude-checks", ",".join(EXCLUDED_CHECKS),
            "--phases", "examples,coverage,fuzzing,stateful",
            "--max-examples", str(EXAMPLES),
            "--seed", "20261204",
            "--generation-database", "none",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # schemathesis keeps a cache in its working directory
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.support.fuzz_edge",
            "MESHMART_FUZZ_INGRESS": mesh.ingress,
            "PYTHONPATH": str(REPO_ROOT),
        },
    )  # fmt: skip
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    generated = re.search(r"(\d+) generated", result.stdout)
    assert generated is not None and int(generated[1]) > 0, report
    (tmp_path / "schemathesis.txt").write_text(result.stdout)
