"""What the figures were measured on: the machine, the commit and every component's version."""

from __future__ import annotations

import platform
import re
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from bench import fortio
from mesh.envoy.process import envoy_binary
from mesh.paths import REPO_ROOT as REPO

PACKAGES = ("aiohttp", "asyncpg", "aiokafka", "pydantic", "uvloop", "opentelemetry-sdk")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _pom_version(artifact: str) -> str:
    pom = (
        REPO / "mesh" / "infra" / "jars" / artifact.split("-")[0].split("_")[0] / "pom.xml"
    ).read_text()
    found = re.search(rf"<artifactId>{artifact}</artifactId>\s*<version>([^<]+)", pom)
    return found.group(1) if found else "unknown"


def _envoy_version() -> str:
    text = subprocess.run([str(envoy_binary()), "--version"], capture_output=True, text=True)
    found = re.search(r"/(\d+\.\d+\.\d+)/", text.stdout)
    return found.group(1) if found else "unknown"


def describe() -> dict[str, Any]:
    dirty = bool(_git("status", "--porcelain", "--", "services", "mesh", "bench"))
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _git("rev-parse", "--short", "HEAD") + ("+changes" if dirty else ""),
        "machine": {
            "cpu": _cpu_model(),
            "cores": psutil.cpu_count(logical=True),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "os": f"{platform.system()} {platform.release()}",
        },
        "versions": {
            "python": sys.version.split()[0],
            "envoy": _envoy_version(),
            "fortio": fortio.version(),
            "kafka": _pom_version("kafka_2.13"),
            "zipkin": _pom_version("zipkin-server"),
            **{name: metadata.version(name) for name in PACKAGES},
        },
        "note": "the load generator (fortio) runs on the same cores as the shop",
    }
