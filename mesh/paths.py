"""Where things are, defined once: the repository, its git-ignored cache, the run folders."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = REPO_ROOT / ".cache"  # downloads, built tools, run folders: never committed
DEFAULT_RUN_DIR = CACHE_DIR / "run"  # `meshmart run`'s state, logs, data and secrets
ISTIO_DIR = REPO_ROOT / "istio"
SERVICES_DIR = REPO_ROOT / "services"
CONFIG_DIR = REPO_ROOT / "config"
JARS_DIR = REPO_ROOT / "mesh" / "infra" / "jars"  # the Maven poms of the JVM servers


def postgres_data_dir(run_dir: Path) -> Path:
    """Where `meshmart db` and `meshmart run` keep the PostgreSQL cluster of one run folder."""
    return run_dir.resolve() / "postgres" / "data"


def secrets_dir(run_dir: Path) -> Path:
    """The development secrets of one run folder (cipher key, JWT signing key)."""
    return run_dir / "secrets"
