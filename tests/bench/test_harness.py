"""`make bench`'s harness, at smoke scale on real shops: it runs every scenario and writes a
valid report. Nothing here judges a figure; benchmarks never fail on a number, only on the
harness not measuring (no successful response, an order lost, a report missing a part)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import compare, report
from bench.__main__ import SCENARIOS
from bench.scenarios import protocol
from bench.scenarios.paths import PATHS
from mesh.paths import REPO_ROOT as REPO

HEADINGS = ("### 1.", "### 2.", "### 3.", "### 4.", "### 5.", "### HTTP/1.1 vs HTTP/2",
            "### Trace sampling", "### Envoy worker threads", "### App processes",
            "### Where the time goes", "### Response serialisation")  # fmt: skip


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--no-docs", "--out-dir", str(out),
         "--run-dir", str(out / "run")],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (json_file,) = out.glob("*-smoke.json")
    return json.loads(json_file.read_text()), json_file.with_suffix(".md").read_text()


def _served(entry: dict[str, Any]) -> None:
    assert entry["count"] > 0 and entry["actual_qps"] > 0, entry
    assert any(code.startswith("2") for code in entry["codes"]), entry["codes"]
    assert entry["latency_ms"]["p50"] <= entry["latency_ms"]["p99"] <= entry["latency_ms"]["max"]


@pytest.mark.timeout(900)
def test_every_scenario_measures_real_responses(smoke: tuple[dict[str, Any], str]) -> None:
    results, _ = smoke
    s = results["scenarios"]
    assert set(s) == set(SCENARIOS)
    for paths in s["overhead"]["rates"].values():
        assert set(paths) == set(PATHS)
        for entry in paths.values():
            _served(entry)
            assert entry["usage"]["app:catalog-service"]["cpu_ms_per_request"] > 0
        assert paths["ingress+sidecar"]["usage"]["ingress"]["vcpu"] > 0
    for ways in s["throughput"].values():
        assert set(ways) == {"direct", "ingress"}
        for entry in ways.values():
            _served(entry)
            assert entry["fortio_cpu_ms_per_request"] > 0  # the load generator's share
    for run in s["kafka"].values():
        assert run["acknowledged"] > 0
        assert run["lost"] == run["duplicated"] == run["unsettled"] == 0, run
        assert run["lag_ms"]["p50"] >= 0
    assert s["startup"]["up_seconds"] > 0
    assert s["startup"]["memory"]["total"]["rss_mib"] > 0
    variants = (*s["tracing"].values(), *s["proxy"].values(), *s["processes"].values())
    for entry in (*s["options"].values(), *variants):
        _served(entry)
    assert {e["processes"] for e in s["options"].values()} == {1, 2}
    assert set(s["protocol"]) == set(protocol.PROTOCOLS)
    for run in s["protocol"].values():
        for entry in run["paths"].values():
            _served(entry["max"])
            _served(entry["fixed"])
    h1, h2 = (s["protocol"][label]["http2_streams_into_catalog"]
              for label in (protocol.HTTP1, protocol.HTTP2))  # fmt: skip
    assert h1 == 0 and h2 > 0, (h1, h2)  # each variant ran the protocol it names
    assert s["profile"]["rps"] > 0 and s["profile"]["app_samples_percent"]
    assert s["profile"]["envoy_counters"]["ingress"]["downstream_rq_total"] > 0
    assert all(us > 0 for us in s["serialisation"].values())


@pytest.mark.timeout(900)
def test_the_report_has_every_part(smoke: tuple[dict[str, Any], str]) -> None:
    results, markdown = smoke
    for heading in HEADINGS:
        assert heading in markdown
    assert results["meta"]["versions"]["fortio"]
    assert markdown == report.render(results)


def test_make_bench_replaces_only_the_generated_section(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text(
        f"# Benchmarks\n\nwritten by hand\n\n{report.BEGIN}\nold\n{report.END}\n\ntail\n"
    )
    report.update_docs(docs, "## Figures\nnew\n")
    text = docs.read_text()
    assert "written by hand" in text and text.endswith("tail\n")
    assert "new" in text and "old" not in text
    report.update_docs(docs, "## Figures\nnewer\n")
    assert docs.read_text().count(report.BEGIN) == 1 and "newer" in docs.read_text()


@pytest.mark.parametrize(
    ("before", "after"),
    [("2026-12-02-94cb3f8-before", "2026-12-02-d6d4a12"),
     ("2026-12-03-94cb3f8-before", "2026-12-03-9a6249d")],
)  # fmt: skip
def test_the_committed_before_and_after_runs_compare_figure_by_figure(
    before: str, after: str
) -> None:
    """docs/benchmarks.md's before/after table comes from a committed pair of runs."""
    results = REPO / "bench" / "results"
    rows = compare.table(
        json.loads((results / f"{before}.json").read_text()),
        json.loads((results / f"{after}.json").read_text()),
    ).splitlines()[2:]
    assert len(rows) == len(compare.ROWS)
    measured = [row for row in rows if row.split("|")[3].strip() != "-"]
    assert len(measured) == len(rows), "every figure has a before and an after value"
    assert all(row.split("|")[4].strip() != "-" for row in rows)


def test_the_docs_table_is_the_latest_pair() -> None:
    table = compare.table(
        *(json.loads((REPO / "bench" / "results" / f"{name}.json").read_text())
          for name in ("2026-12-03-94cb3f8-before", "2026-12-03-9a6249d"))
    )  # fmt: skip
    assert table.strip() in (REPO / "docs" / "benchmarks.md").read_text()
