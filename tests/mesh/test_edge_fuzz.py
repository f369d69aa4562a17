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
from pathlib import Path

import pytest

from mesh.commands.openapi import TABLES, committed_path
from mesh.paths import REPO_ROOT
from tests.mesh.conftest import Mesh
from tests.support.schemathesis_run import run_schemathesis

EXAMPLES = int(os.environ.get("MESHMART_FUZZ_EXAMPLES", "30"))


@pytest.mark.parametrize("package", sorted(TABLES))
def test_generated_requests_through_the_edge_get_documented_answers(
    mesh: Mesh, package: str, tmp_path: Path
) -> None:
    service, _ = TABLES[package]
    result = run_schemathesis(
        str(committed_path(package)),
        options=["--url", f"{mesh.ingress}/{service}"],
        phases=["examples", "coverage", "fuzzing", "stateful"],
        examples=EXAMPLES,
        seed=20261204,
        cwd=tmp_path,
        timeout=300,
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.support.fuzz_edge",
            "MESHMART_FUZZ_INGRESS": mesh.ingress,
            "PYTHONPATH": str(REPO_ROOT),
        },
    )
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    generated = re.search(r"(\d+) generated", result.stdout)
    assert generated is not None and int(generated[1]) > 0, report
    (tmp_path / "schemathesis.txt").write_text(result.stdout)
