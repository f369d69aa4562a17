"""OS-level helpers for mesh.postgres: which user runs the server, ports, sockets, live PIDs."""

from __future__ import annotations

import hashlib
import os
import pwd
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# PostgreSQL refuses to run as root (and CI runs as root), so root runs it as this user.
PG_OS_USER = "meshmart-pg"
# Linux's sun_path is 108 bytes; PostgreSQL appends "/.s.PGSQL.<port>.lock" to the directory.
_SOCKET_PATH_MAX = 100


class PostgresError(RuntimeError):
    """Starting, stopping or reaching the local PostgreSQL server failed."""


@dataclass(frozen=True)
class RunAs:
    """The OS user the server's processes run as; uid None means "whoever we are"."""

    uid: int | None = None
    gid: int | None = None

    def subprocess_kwargs(self) -> dict[str, Any]:
        if self.uid is None:
            return {}
        # extra_groups=[] drops root's supplementary groups too, not just uid/gid.
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def own(self, path: Path) -> None:
        if self.uid is not None and self.gid is not None:
            os.chown(path, self.uid, self.gid)


def server_user(data_dir: Path, progress: Callable[[str], None]) -> RunAs:
    """Ourselves unless root; as root, the data dir's owner, or PG_OS_USER for a new cluster."""
    if os.geteuid() != 0:
        return RunAs()
    try:
        st = data_dir.stat()
    except FileNotFoundError:
        st = None
    if st is not None and st.st_uid != 0:
        return RunAs(st.st_uid, st.st_gid)
    try:
        entry = pwd.getpwnam(PG_OS_USER)
    except KeyError:
        progress(f"running as root: creating system user {PG_OS_USER} to run PostgreSQL")
        result = subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home",
             "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", PG_OS_USER],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        try:  # re-read even on failure: a concurrent run may have created it first
            entry = pwd.getpwnam(PG_OS_USER)
        except KeyError:
            raise PostgresError(f"useradd {PG_OS_USER} failed: {result.stderr.strip()}") from None
    return RunAs(entry.pw_uid, entry.pw_gid)


def make_traversable(path: Path, progress: Callable[[str], None]) -> None:
    """Add o+x (enter, not list) to `path` and its ancestors so the server user can reach it."""
    for directory in (path, *path.parents):
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            progress(f"chmod o+x {directory} so {PG_OS_USER} can reach its files")
            directory.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def socket_dir(data_dir: Path, user: RunAs) -> Path:
    """A private directory for the unix socket, short enough for sun_path."""
    directory = data_dir.parent / "sock"
    if len(str(directory)) > _SOCKET_PATH_MAX - len("/.s.PGSQL.65535.lock"):
        digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
        directory = Path(tempfile.gettempdir()) / f"meshmart-pg-{digest}"
    directory.mkdir(mode=0o700, exist_ok=True)
    st = directory.lstat()
    # In a shared /tmp someone else could have created it first: only accept our own.
    if not stat.S_ISDIR(st.st_mode) or st.st_uid not in {os.geteuid(), user.uid}:
        raise PostgresError(f"{directory} is not a directory owned by us; remove it")
    user.own(directory)
    return directory


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # PostgreSQL sets SO_REUSEADDR too, so TIME_WAIT leftovers do not count as taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pid_alive(pid: int) -> bool:
    """True for a live postgres process; a zombie or a recycled PID does not count."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): best effort
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    comm, _, rest = raw.partition("(")[2].rpartition(")")
    # pg_ctl exits once the server is up, so the postmaster is re-parented to PID 1; a stopped
    # one stays a zombie ("Z") until PID 1 reaps it (up to ~1.5 s with some container inits).
    return comm == "postgres" and rest.split()[0] != "Z"


def live_postmaster(data_dir: Path) -> tuple[int, int | None] | None:
    """(pid, port) from postmaster.pid if that postmaster is still alive, else None."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None
    if not pid_alive(pid):
        return None
    # Line 4 is the port; it may not be written yet while the server is starting.
    port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
    return pid, port


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def log_tail(log: Path, offset: int = 0, lines: int = 15) -> str:
    """The last lines written to `log` after byte `offset` (this attempt's output only)."""
    try:
        with log.open("rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])
