"""Jars from Maven Central, fetched once with the `mvn` client and cached.

A folder under mesh/infra/jars/ holds a pom.xml that lists what to fetch (packaging pom, nothing is
built); `fetch_jars` copies its runtime dependencies into a cache directory. The copy is made in
a temporary directory and renamed into place with a stamp (a digest of the pom and of how it was
fetched), so an interrupted download never looks complete and a changed pom is fetched again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mesh.paths import CACHE_DIR
from mesh.runtime.files import locked

__all__ = ["DEFAULT_REPO_LOCAL", "MavenError", "fetch_jars", "find_java", "pom_digest"]

# Maven's local repository, kept with the other downloads (git-ignored), not in ~/.m2.
DEFAULT_REPO_LOCAL = CACHE_DIR / "m2"
# Pinned: without a version Maven 3.8 falls back to its super-POM's maven-dependency-plugin 2.8.
_GOAL = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"
_STAMP = ".fetched"
_TIMEOUT = 900
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class MavenError(RuntimeError):
    """Maven or Java is missing, or fetching jars failed."""


def find_java() -> str:
    """The `java` to run: $JAVA_HOME/bin/java if set, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and os.access(Path(home) / "bin" / "java", os.X_OK):
        return str(Path(home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise MavenError("java not found: install a JDK (17 or newer) or set JAVA_HOME")
    return java


def pom_digest(pom_dir: Path) -> str:
    """A hex digest of `pom_dir`/pom.xml and of how it is fetched: the cache key."""
    try:
        pom = (pom_dir / "pom.xml").read_bytes()
    except FileNotFoundError:
        raise MavenError(f"no pom.xml in {pom_dir}") from None
    return hashlib.sha256(_GOAL.encode() + b"\0" + pom).hexdigest()


def _label(pom_dir: Path) -> str:
    """The pom's <name> (our own poms give one), for progress lines; else the folder name."""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        text = re.sub(r"<!--.*?-->", "", (pom_dir / "pom.xml").read_text(), flags=re.DOTALL)
        if match := re.search(r"<name>\s*([^<]+?)\s*</name>", text):
            return match.group(1)
    return pom_dir.name


def _complete(dest: Path, digest: str) -> bool:
    try:
        return (dest / _STAMP).read_text().strip() == digest
    except (FileNotFoundError, NotADirectoryError):
        return False


def _locked(dest: Path) -> contextlib.AbstractContextManager[None]:
    """Serialise fetches into `dest` across processes (e.g. two test sessions at once)."""
    return locked(dest.parent / f".{dest.name}.lock")


_BOILERPLATE = re.compile(
    r"^\[ERROR\]\s*$|-e switch|-X switch|For more information about the errors|^\[ERROR\] \[Help"
)


def _tail(output: str, lines: int = 20) -> str:
    kept = [
        line for line in _ANSI.sub("", output).strip().splitlines() if not _BOILERPLATE.search(line)
    ]
    return "\n".join(kept[-lines:])


def _summary(tail: str) -> str:
    """The first error line, without Maven's prefixes: says what failed in one line."""
    for line in tail.splitlines():
        if line.startswith("[ERROR]"):
            text = re.sub(r"\s*-> \[Help \d+\]$", "", line.removeprefix("[ERROR]").strip())
            return re.sub(r"^Failed to execute goal (?:.*? )?on project [^:]+: ", "", text)
    return tail.splitlines()[-1] if tail else "no output"


def fetch_jars(
    pom_dir: Path,
    dest: Path,
    progress: Callable[[str], None] = print,
    *,
    repo_local: Path = DEFAULT_REPO_LOCAL,
) -> Path:
    """Copy the runtime dependencies of `pom_dir`/pom.xml into `dest` (once) and return `dest`.

    Does nothing when `dest` already holds a complete copy for this exact pom. Otherwise runs
    `mvn dependency:copy-dependencies` into a temporary sibling of `dest` and renames it into
    place. Raises MavenError if mvn or java is missing or mvn fails (with the end of its output).
    """
    pom_dir = pom_dir.resolve()
    dest = dest.resolve()
    digest = pom_digest(pom_dir)
    if _complete(dest, digest):
        return dest
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MavenError("mvn not found: install Apache Maven 3.8+ to fetch jars")
    find_java()  # mvn needs it too; say so plainly rather than through mvn's error
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _locked(dest):
        if _complete(dest, digest):  # another process fetched it while we waited
            return dest
        label = _label(pom_dir)
        progress(f"fetching {label} jars with Maven (first run only)…")
        began = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
        try:
            _run_mvn(mvn, pom_dir, tmp, repo_local)
            jars = sorted(tmp.glob("*.jar"))
            if not jars:
                raise MavenError(f"mvn fetched no jars for {pom_dir / 'pom.xml'}")
            size = sum(j.stat().st_size for j in jars) / 1e6
            (tmp / _STAMP).write_text(digest + "\n")
            tmp.chmod(0o755)  # mkdtemp makes it private; jars are public anyway
            _replace_dir(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # gone already after a successful rename
        progress(
            f"fetched {len(jars)} {label} jars ({size:.0f} MB) in {time.monotonic() - began:.1f} s"
        )
    return dest


def _run_mvn(mvn: str, pom_dir: Path, out: Path, repo_local: Path) -> None:
    cmd = [
        mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(pom_dir / "pom.xml"), _GOAL,
        "-DincludeScope=runtime", f"-DoutputDirectory={out}", f"-Dmaven.repo.local={repo_local}",
    ]  # fmt: skip
    try:
        result = subprocess.run(
            cmd, cwd=pom_dir, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=_TIMEOUT, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise MavenError(f"mvn did not finish in {_TIMEOUT} s ({pom_dir / 'pom.xml'})") from None
    if result.returncode != 0:
        tail = _tail(result.stdout + "\n" + result.stderr)
        raise MavenError(
            f"mvn failed (exit {result.returncode}) for {pom_dir / 'pom.xml'}: {_summary(tail)}\n"
            + tail
        )


def _replace_dir(new: Path, dest: Path) -> None:
    """Rename `new` to `dest`, moving an old (stale or partial) `dest` out of the way first."""
    old = None
    if dest.exists() or dest.is_symlink():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        dest.rename(old)
    new.rename(dest)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()
