"""What the soak prints and writes: a progress line per sample, the verdict table, and
`<date>-<commit>-soak.json` / `.md` in the out dir, as `make bench` writes its results."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench.soak_figures import Sample
from bench.soak_judge import Verdict
from mesh.paths import REPO_ROOT as REPO

PROCESS_CHECKS = ("alive", "rss", "fds", "tcp")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()


def meta() -> dict[str, Any]:
    dirty = bool(_git("status", "--porcelain", "--", "services", "mesh", "bench"))
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _git("rev-parse", "--short", "HEAD") + ("+changes" if dirty else ""),
        "machine": f"{psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.1f} GiB,"
        f" {platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
    }


def progress(sample: Sample, previous: Sample | None, warmup: float) -> str:
    if previous is None or sample.elapsed <= previous.elapsed:
        rate = "     -"  # no interval yet
    else:
        done = sample.requests - previous.requests
        rate = f"{done / (sample.elapsed - previous.elapsed):6.1f}"
    phase = "  (warm-up)" if sample.elapsed < warmup else ""
    return (f"  {sample.elapsed / 60:5.1f} min  {rate} req/s  errors {sample.errors}"
            f"  max lag {sample.max_lag}  pg conns {sample.pg_total}{phase}")  # fmt: skip


def _mark(verdict: Verdict | None) -> str:
    if verdict is None:
        return "-"
    return f"{verdict.detail} {'ok' if verdict.passed else 'FAIL'}"


def rows(verdicts: Sequence[Verdict]) -> tuple[list[list[str]], list[list[str]]]:
    """(one row per process: label and each PROCESS_CHECKS cell; one row per other check)."""
    by_key = {(v.check, v.subject): v for v in verdicts}
    labels = sorted({v.subject for v in verdicts if v.check in PROCESS_CHECKS})
    processes = [[label, *(_mark(by_key.get((c, label))) for c in PROCESS_CHECKS)]
                 for label in labels]  # fmt: skip
    others = [[v.check, v.subject, _mark(v)] for v in verdicts if v.check not in PROCESS_CHECKS]
    return processes, others


def _aligned(lines: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
            for line in lines]  # fmt: skip


def table(verdicts: Sequence[Verdict]) -> str:
    processes, others = rows(verdicts)
    header = ["process", *PROCESS_CHECKS]
    return "\n".join([*_aligned([header, *processes]), "", *_aligned(others)])


def markdown(result: dict[str, Any]) -> str:
    m, o = result["meta"], result["options"]
    verdicts = [Verdict(**v) for v in result["verdicts"]]
    processes, others = rows(verdicts)
    lines = [
        f"# Soak of {m['date']} on `{m['commit']}`: {'PASSED' if result['passed'] else 'FAILED'}",
        "",
        f"{o['minutes']:g} min at {o['rps']:g} req/s through the ingress "
        f"({o['warmup_minutes']:g} min warm-up, a sample every {o['sample_seconds']:g} s), "
        f"`meshmart run {' '.join(o['shop_args'])}`; {m['machine']}; the load generator runs "
        f"on the same cores. Achieved {result['load']['rps']:.1f} req/s, "
        f"{result['load']['requests']} requests.",
        "",
        "| process | alive | memory (after warm-up -> end) | open fds | TCP connections |",
        "|---|---|---|---|---|",
        *(f"| {' | '.join(p)} |" for p in processes),
        "",
        "| check | subject | result |",
        "|---|---|---|",
        *(f"| {' | '.join(r)} |" for r in others),
        "",
        "| operation | status | answers |",
        "|---|---|---|",
        *(f"| {op} | {status} | {n} |" for op, status, n in result["load"]["answers"]),
    ]
    return "\n".join(lines) + "\n"


def write(out_dir: Path, result: dict[str, Any]) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{result['meta']['date'][:10]}-{result['meta']['commit']}-soak"
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    md_path.write_text(markdown(result))
    return json_path, md_path
