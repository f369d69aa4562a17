"""Which OS user runs the local PostgreSQL server, and the socket folder it can reach."""

from __future__ import annotations

import hashlib
import os
import pwd
import stat
import subprocess
import tempfile
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
