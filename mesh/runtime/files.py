"""Files of the processes we run: the end of a log, log rotation, a lock on a run folder."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

_LOG_ROTATE_BYTES = 20_000_000


def log_tail(log: Path, offset: int = 0, lines: int = 15) -> str:
    """The last lines written to `log` after byte `offset` (this attempt's output only)."""
    try:
        with log.open("rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def rotate_log(log: Path) -> None:
    """Keep one older generation (`log`.1) once `log` has grown past 20 MB."""
    with contextlib.suppress(FileNotFoundError):
        if log.stat().st_size > _LOG_ROTATE_BYTES:
            log.replace(log.with_name(log.name + ".1"))


def read_numbers(path: Path) -> tuple[int, ...] | None:
    """The whitespace-separated integers of a small state file (a pid, ports), or None."""
    try:
        numbers = tuple(int(n) for n in path.read_text().split())
    except (FileNotFoundError, ValueError):
        return None
    return numbers or None


@contextlib.contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_file` (created if missing), across processes."""
    with lock_file.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def locked_dir(root: Path) -> contextlib.AbstractContextManager[None]:
    """Lock `root`/.lock (creating `root`): one start or stop at a time per server folder."""
    root.mkdir(parents=True, exist_ok=True)
    return locked(root / ".lock")
